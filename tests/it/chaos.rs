//! The adversarial suite: another tenant's token tries every way in — enumerated ids of
//! every kind, tenant fields injected into queries, filters and bodies, duplicated and
//! encoded parameters, path traversal, oversized and hostile values — and nothing of the
//! victim's data crosses; every attempt on real data is denied, audited and counted. Plus
//! the noisy neighbour: a tenant flooding at 10x its quota gets 429 with Retry-After while
//! its neighbour is served in full (forged, expired, wrong-issuer, wrong-audience, `alg:
//! none` and rotated-key tokens are in `oidc.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::support::TestApp;

/// Everything acme owns that globex could try to name.
struct Victim {
    exec: String,
    digest: String,
    decision: String,
    manifest: String,
}

async fn victim(t: &TestApp) -> Victim {
    let e = t.run(&t.tokens.acme_operator, "artifacts").await;
    Victim {
        exec: e["id"].as_str().unwrap().to_owned(),
        digest: e["receipt"]["digest"].as_str().unwrap().to_owned(),
        decision: e["decisions"][0]["id"].as_str().unwrap().to_owned(),
        manifest: e["manifest"]["name"].as_str().unwrap().to_owned(),
    }
}

/// True when the answer to `request` carries anything of acme's beyond what the request
/// itself named (a "not found" may echo the id it was asked for).
fn leaks(request: &str, body: &Value, v: &Victim) -> bool {
    let text = body.to_string();
    let hex = v.digest.trim_start_matches("sha256:");
    [v.exec.as_str(), hex, v.decision.as_str()]
        .iter()
        .any(|s| text.contains(s) && !request.to_lowercase().contains(&s.to_lowercase()))
        || text.contains("\"tenant\":\"acme\"")
        || ["tasks", "receipt", "decisions", "artifacts", "statement"]
            .iter()
            .any(|k| body.get(k).is_some())
}

#[tokio::test]
async fn another_tenant_gets_nothing_by_any_path() {
    let t = TestApp::new().await;
    let v = victim(&t).await;
    let attacker = t.tokens.globex_operator.clone();
    let hex = v.digest.trim_start_matches("sha256:").to_owned();
    let paths: Vec<String> = vec![
        // Enumerated and guessed ids, in every form.
        format!("/api/v1/executions/{}", v.exec),
        format!("/api/v1/executions/{}", v.exec.to_uppercase()),
        format!("/api/v1/executions/{}/receipt", v.exec),
        format!("/api/v1/executions/{}/receipt?format=sigstore", v.exec),
        format!("/api/v1/executions/{}/proof", v.exec),
        format!("/api/v1/executions/{}/proof?tree_size=1", v.exec),
        format!("/api/v1/receipts/{}", v.digest),
        format!("/api/v1/receipts/sha256:{}", hex.to_uppercase()),
        format!("/api/v1/receipts/{hex}"),
        format!("/api/v1/decisions/{}", v.decision),
        format!("/api/v1/decisions/{}/explain", v.decision),
        // Tenant fields injected into queries and filters.
        "/api/v1/executions?tenant=acme".into(),
        "/api/v1/executions?tenant=globex&tenant=acme".into(),
        "/api/v1/executions?tenant=ACME".into(),
        "/api/v1/executions?tenant=acme%00".into(),
        "/api/v1/executions?tenant=%61cme".into(),
        format!("/api/v1/executions?name={}&tenant=acme", v.manifest),
        format!("/api/v1/executions?name={}", v.manifest),
        "/api/v1/executions?name=*".into(),
        "/api/v1/executions?name=%27%20OR%201%3D1--".into(),
        format!("/api/v1/executions?cursor={}", v.exec),
        format!("/api/v1/executions/{}?tenant=acme", v.exec),
        format!("/api/v1/executions/{}?tenant=globex", v.exec),
        format!("/api/v1/receipts/{}?tenant=acme", v.digest),
        "/api/v1/audit?tenant=acme".into(),
        // Path traversal and encodings.
        format!("/api/v1/executions/..%2F..%2Facme%2F{}", v.exec),
        format!("/api/v1/executions/%2e%2e/{}", v.exec),
        "/api/v1/executions/..%2f..%2fetc%2fpasswd".into(),
        format!("/api/v1/executions/{}%00", v.exec),
        format!("/api/v1/executions/{}/../../{}", v.exec, v.exec),
        format!("/api/v1/executions/{}", "a".repeat(10_000)),
    ];
    let before = t
        .app
        .engine
        .store()
        .read()
        .unwrap()
        .audit_all(None, 1_000_000)
        .unwrap()
        .len();
    let mut on_real_data = 0;
    for p in &paths {
        let r = t.get(p, Some(&attacker)).await;
        assert!(!leaks(p, &r.json, &v), "{p} leaked: {}", r.json);
        assert!(
            !r.status.is_success() || r.json["items"] == json!([]),
            "{p}: {} {}",
            r.status,
            r.json
        );
        assert!(
            r.status != StatusCode::INTERNAL_SERVER_ERROR,
            "{p}: {}",
            r.json
        );
        if r.status == StatusCode::NOT_FOUND && r.json["code"] == "not_found" {
            on_real_data += 1;
        }
    }
    assert!(on_real_data >= 20, "{on_real_data}");
    // Bodies: a submission naming the victim tenant in every field it could hide in.
    for body in [
        json!({"workflow": "hello", "tenant": "acme"}),
        json!({"manifest": {"name": "x", "version": "1.0.0", "region": "eu-west", "tenant": "acme",
            "tasks": [{"id": "a", "uses": "builtin/echo", "with": {"message": "hi"}}]}}),
    ] {
        let r = t
            .post_json("/api/v1/executions", Some(&attacker), &body)
            .await;
        assert!(!r.status.is_success(), "{body}: {}", r.json);
    }
    let yaml = t
        .send(
            Request::post("/api/v1/executions?tenant=acme")
                .header("authorization", format!("Bearer {attacker}"))
                .header("content-type", "application/yaml")
                .body(Body::from(crate::support::echo_manifest("x", "eu-west")))
                .unwrap(),
        )
        .await;
    assert_eq!(yaml.status, StatusCode::NOT_FOUND);
    // Every attempt that touched acme's real data or named acme is in the audit log.
    let events = t
        .app
        .engine
        .store()
        .read()
        .unwrap()
        .audit_all(None, 1_000_000)
        .unwrap();
    let attempts: Vec<_> = events[before..]
        .iter()
        .filter(|e| e.actor == "token:globex-operator")
        .collect();
    assert!(attempts.len() >= 18, "{} attempts audited", attempts.len());
    assert!(attempts.iter().all(|e| {
        e.tenant.as_ref().is_some_and(|t| t.as_str() == "acme")
            && serde_json::to_value(e.kind).unwrap() == json!("cross_tenant_denied")
    }));
    let counted: u64 = maestro::http::router::routes()
        .iter()
        .map(|r| {
            t.app
                .metrics
                .cross_tenant_access
                .with_label_values(&[&format!("{} {}", r.method, r.path), "denied", "request"])
                .get()
        })
        .sum();
    assert_eq!(counted as usize, attempts.len());
    // Acme's data is intact and globex's own view is empty.
    let mine = t.get("/api/v1/executions", Some(&attacker)).await;
    assert_eq!(mine.json["items"], json!([]));
    let theirs = t
        .get(
            &format!("/api/v1/executions/{}", v.exec),
            Some(&t.tokens.acme_viewer),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::OK);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_noisy_neighbour_is_throttled_and_its_neighbour_is_served() {
    // acme may submit 20/s (burst 20); globex the same. acme floods at 10x its quota.
    let t = Arc::new(
        TestApp::with(
            |c| {
                for id in ["acme", "globex"] {
                    let tenant = c.tenants.get_mut(id).unwrap();
                    tenant.rate = Some(20);
                    tenant.burst = Some(20);
                }
            },
            "",
        )
        .await,
    );
    let accepted_a = Arc::new(AtomicUsize::new(0));
    let throttled_a = Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let flood = {
        let (t, ok, no) = (t.clone(), accepted_a.clone(), throttled_a.clone());
        tokio::spawn(async move {
            // 400 submissions over ~2 s: 200/s against a quota of 20/s.
            let mut tasks = Vec::new();
            for i in 0..400 {
                let (t, ok, no) = (t.clone(), ok.clone(), no.clone());
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(i * 5)).await;
                    let r = t
                        .post_json(
                            "/api/v1/executions",
                            Some(&t.tokens.acme_operator),
                            &json!({"workflow": "hello"}),
                        )
                        .await;
                    match r.status {
                        StatusCode::TOO_MANY_REQUESTS => {
                            let retry: u64 =
                                r.headers["retry-after"].to_str().unwrap().parse().unwrap();
                            assert!(retry >= 1);
                            assert_eq!(r.json["code"], "rate_limited");
                            no.fetch_add(1, Ordering::Relaxed);
                        }
                        s if s.is_success() => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("acme: {other} {}", r.json),
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        })
    };
    // globex submits steadily at 10/s, half its quota, during the flood.
    let mut served_b = 0;
    for _ in 0..20 {
        let r = t
            .post_json(
                "/api/v1/executions",
                Some(&t.tokens.globex_operator),
                &json!({"workflow": "hello"}),
            )
            .await;
        assert!(
            r.status.is_success(),
            "globex refused: {} {}",
            r.status,
            r.json
        );
        served_b += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    flood.await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let (ok, no) = (
        accepted_a.load(Ordering::Relaxed),
        throttled_a.load(Ordering::Relaxed),
    );
    assert_eq!(served_b, 20);
    assert_eq!(ok + no, 400);
    // acme got at most its burst plus its rate over the flood, the rest was refused.
    let allowed = 20.0 + 20.0 * elapsed + 5.0;
    assert!(
        (ok as f64) <= allowed,
        "acme accepted {ok} in {elapsed:.1}s"
    );
    assert!(no >= 250, "acme throttled only {no} of 400");
    let rejected = t
        .app
        .metrics
        .limiter_rejections
        .with_label_values(&["tenant", "acme"])
        .get();
    assert_eq!(rejected as usize, no);
    assert_eq!(
        t.app
            .metrics
            .limiter_rejections
            .with_label_values(&["tenant", "globex"])
            .get(),
        0
    );
}
