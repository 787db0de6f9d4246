//! In-process API tests through the router: submission in every form, lists and filters,
//! receipts and proofs that verify, tenant scoping, and every kind of bad request.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use maestro::attest::keys::PublicKey;
use maestro::attest::receipt::{self, Trust};
use serde_json::{Value, json};

use crate::support::{TestApp, echo_manifest};

fn trust(app: &TestApp) -> Trust {
    let pem = app.app.engine.signing().appliance.public().pem().to_owned();
    Trust {
        keys: vec![PublicKey::from_pem(&pem).unwrap()],
        origin: Some(app.app.engine.signing().origin.clone()),
    }
}

#[tokio::test]
async fn submit_yaml_json_and_named_workflows() {
    let t = TestApp::new().await;
    let op = t.tokens.acme_operator.clone();
    let r = t
        .post_yaml(
            "/api/v1/executions?wait=30s",
            &op,
            &echo_manifest("y", "eu-west"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["status"], "succeeded");
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("/api/v1/executions/ex_")
    );
    let manifest: Value = serde_json::from_str(
        r#"{"name":"j","version":"1.0.0","region":"eu-west","tasks":[{"id":"a","uses":"builtin/echo","with":{"message":1}}]}"#,
    )
    .unwrap();
    let r = t
        .post_json(
            "/api/v1/executions?wait=30s",
            Some(&op),
            &json!({"manifest": manifest}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json["tasks"][0]["outputs"]["message"], 1);
    let r = t
        .post_json(
            "/api/v1/executions",
            Some(&op),
            &json!({"workflow": "fan-out-fan-in"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json["status"], "queued");
    let id = r.json["id"].as_str().unwrap().to_owned();
    // Once final, GET shows the result.
    let mut status = String::new();
    for _ in 0..200 {
        let g = t.get(&format!("/api/v1/executions/{id}"), Some(&op)).await;
        status = g.json["status"].as_str().unwrap().to_owned();
        if status == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, "succeeded");
    t.stop().await;
}

#[tokio::test]
async fn receipts_and_proofs_verify_and_the_log_stays_consistent() {
    let t = TestApp::new().await;
    let op = t.tokens.acme_operator.clone();
    let first = t.run(&op, "hello").await;
    let cp1 = t.get("/api/v1/log", None).await.json["checkpoint"].clone();
    let second = t.run(&op, "artifacts").await;
    assert_eq!(second["status"], "succeeded", "{second}");
    for e in [&first, &second] {
        let id = e["id"].as_str().unwrap();
        let r = t
            .get(&format!("/api/v1/executions/{id}/receipt"), Some(&op))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.headers["content-type"],
            "application/vnd.maestro.receipt.v1+json"
        );
        let report = receipt::verify(r.json.to_string().as_bytes(), &trust(&t));
        assert!(report.valid, "{report:#?}");
        // The same receipt by digest.
        let digest = e["receipt"]["digest"].as_str().unwrap();
        let by = t
            .get(&format!("/api/v1/receipts/{digest}"), Some(&op))
            .await;
        assert_eq!(by.json["dsseEnvelope"], r.json["dsseEnvelope"]);
        // The inclusion proof route agrees with the receipt.
        let p = t
            .get(&format!("/api/v1/executions/{id}/proof"), Some(&op))
            .await;
        assert_eq!(p.json["log_index"], e["receipt"]["log_index"]);
        let s = t
            .get(
                &format!("/api/v1/executions/{id}/receipt?format=sigstore"),
                Some(&op),
            )
            .await;
        assert_eq!(
            s.json["mediaType"],
            "application/vnd.dev.sigstore.bundle.v0.3+json"
        );
    }
    // The artifacts are subjects of the receipt, with their location's region.
    let artifacts = second["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 2);
    assert!(
        artifacts
            .iter()
            .all(|a| a["region"] == "eu-west" && a["location"] == "eu-bucket")
    );
    // The log after the second run is consistent with the checkpoint after the first.
    let cp2 = t.get("/api/v1/log", None).await.json["checkpoint"].clone();
    let (s1, s2) = (cp1["size"].as_u64().unwrap(), cp2["size"].as_u64().unwrap());
    let proof = t
        .get(&format!("/api/v1/log/consistency?from={s1}&to={s2}"), None)
        .await
        .json;
    let hashes: Vec<[u8; 32]> = proof["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| maestro::tlog::parse_hex_hash(h.as_str().unwrap()).unwrap())
        .collect();
    let root = |v: &Value| maestro::tlog::parse_hex_hash(v["root_hash"].as_str().unwrap()).unwrap();
    maestro::tlog::verify_consistency(&hashes, s1, root(&cp1), s2, root(&cp2)).unwrap();
    let note = t.get("/api/v1/log/checkpoint", None).await;
    assert!(
        note.json.as_str().unwrap().contains('\u{2014}'),
        "signed note expected"
    );
    t.stop().await;
}

#[tokio::test]
async fn lists_filter_and_paginate() {
    let t = TestApp::new().await;
    let op = t.tokens.acme_operator.clone();
    for w in ["hello", "hello", "timeout", "policy-deny", "hello"] {
        t.run(&op, w).await;
    }
    let all = t.get("/api/v1/executions?limit=2", Some(&op)).await.json;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let cursor = all["next_cursor"].as_str().unwrap();
    let next = t
        .get(
            &format!("/api/v1/executions?limit=10&cursor={cursor}"),
            Some(&op),
        )
        .await
        .json;
    assert_eq!(next["items"].as_array().unwrap().len(), 3);
    assert!(next.get("next_cursor").is_none());
    let failed = t
        .get("/api/v1/executions?status=failed", Some(&op))
        .await
        .json;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1);
    let denied = t
        .get("/api/v1/executions?status=denied", Some(&op))
        .await
        .json;
    assert_eq!(denied["items"][0]["name"], "policy-deny");
    let hello = t.get("/api/v1/executions?name=hello", Some(&op)).await.json;
    assert_eq!(hello["items"].as_array().unwrap().len(), 3);
    for bad in [
        "status=done",
        "limit=0",
        "limit=abc",
        "cursor=xyz",
        "colour=red",
    ] {
        let r = t.get(&format!("/api/v1/executions?{bad}"), Some(&op)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json);
        assert_eq!(r.json["code"], "bad_request", "{bad}");
    }
    t.stop().await;
}

#[tokio::test]
async fn a_denial_is_403_with_the_recorded_execution() {
    let t = TestApp::new().await;
    let op = t.tokens.acme_operator.clone();
    let r = t
        .post_yaml("/api/v1/executions", &op, &echo_manifest("x", "us-east"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json["code"], "denied_by_policy");
    let e = &r.json["execution"];
    assert_eq!(e["status"], "denied");
    assert_eq!(e["decisions"][1]["policy"], "mc.residency");
    assert_eq!(
        e["decisions"][1]["reasons"][0]["code"],
        "region_not_allowed"
    );
    let id = e["id"].as_str().unwrap();
    let receipt = t
        .get(&format!("/api/v1/executions/{id}/receipt"), Some(&op))
        .await;
    assert!(receipt::verify(receipt.json.to_string().as_bytes(), &trust(&t)).valid);
    t.stop().await;
}

#[tokio::test]
async fn invalid_manifests_list_every_problem_and_store_nothing() {
    let t = TestApp::new().await;
    let op = t.tokens.acme_operator.clone();
    let bad = "name: Bad\nversion: 1\nregion: eu-wset\ntasks:\n  - {id: a, uses: builtin/ech0}\n  - {id: a, uses: builtin/echo, with: {message: x}, needs: [zz]}\n";
    let r = t.post_yaml("/api/v1/executions", &op, bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json["code"], "manifest_invalid");
    let paths: Vec<&str> = r.json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    for p in [
        "name",
        "version",
        "region",
        "tasks[0].uses",
        "tasks[1].id",
        "tasks[1].needs[0]",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    let unknown_region = r.json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == "region")
        .unwrap();
    assert!(
        unknown_region["message"]
            .as_str()
            .unwrap()
            .contains("did you mean \"eu-west\"")
    );
    let list = t.get("/api/v1/executions", Some(&op)).await.json;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        0,
        "nothing may be stored"
    );
    let log = t.get("/api/v1/log", None).await.json;
    assert!(log.get("checkpoint").is_none());
    t.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_clear_json_errors() {
    let t = TestApp::with(|c| c.limits.max_body_bytes = 2048, "").await;
    let op = t.tokens.acme_operator.clone();
    let send = |ct: &str, body: Vec<u8>| {
        Request::post("/api/v1/executions")
            .header("authorization", format!("Bearer {op}"))
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap()
    };
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            send("application/json", b"{not json".to_vec()),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            send("application/json", b"{\"manifest\": 5}".to_vec()),
            StatusCode::BAD_REQUEST,
            "manifest_invalid",
        ),
        (
            send("application/json", b"{}".to_vec()),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            send("application/json", br#"{"workflow":"nope"}"#.to_vec()),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            send("application/yaml", vec![0xff, 0xfe, 0x00]),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            send("text/plain", b"x".to_vec()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            send("application/yaml", vec![b'a'; 4096]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            Request::post("/api/v1/executions?wait=1h")
                .header("authorization", format!("Bearer {op}"))
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Request::get("/api/v2/nothing").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
        (
            Request::delete("/api/v1/executions")
                .body(Body::empty())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Request::put("/api/v1/keys").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (req, status, code) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let r = t.send(req).await;
        assert_eq!(r.status, status, "{what}: {}", r.json);
        assert_eq!(r.json["code"], code, "{what}: {}", r.json);
        assert!(
            r.json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
    }
    assert_eq!(
        t.get("/api/v1/executions", Some(&op)).await.json["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    t.stop().await;
}

#[tokio::test]
async fn tokens_are_checked() {
    let t = TestApp::new().await;
    for header in [
        None,
        Some("Bearer mct_forged"),
        Some("Basic abc"),
        Some("Bearer"),
        Some("bearer  "),
    ] {
        let mut b = Request::get("/api/v1/executions");
        if let Some(h) = header {
            b = b.header("authorization", h);
        }
        let r = t.send(b.body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(r.json["code"], "unauthenticated");
    }
    // A viewer reads but cannot run.
    let viewer = t.tokens.acme_viewer.clone();
    assert_eq!(
        t.get("/api/v1/executions", Some(&viewer)).await.status,
        StatusCode::OK
    );
    let r = t
        .post_json(
            "/api/v1/executions",
            Some(&viewer),
            &json!({"workflow": "hello"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json["code"], "forbidden");
    t.stop().await;
}

#[tokio::test]
async fn public_routes_describe_the_appliance() {
    let t = TestApp::new().await;
    let keys = t.get("/api/v1/keys", None).await.json;
    assert_eq!(keys["keys"][0]["signs"], "appliance");
    assert!(
        keys["keys"][0]["note_verifier_key"]
            .as_str()
            .unwrap()
            .starts_with(&t.app.engine.signing().origin)
    );
    let schema = t.get("/api/v1/schema/manifest-v1.json", None).await.json;
    assert_eq!(schema, maestro::domain::manifest::json_schema());
    let wf = t.get("/api/v1/workflows", None).await.json;
    assert!(wf["names"].as_array().unwrap().contains(&json!("hello")));
    let ready = t.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json["ready"], true);
    assert_eq!(t.get("/healthz", None).await.status, StatusCode::OK);
    let version = t.get("/api/v1/version", None).await.json;
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    t.stop().await;
}

#[tokio::test]
async fn readiness_fails_once_shutting_down() {
    let t = TestApp::new().await;
    t.app
        .engine
        .shutdown(std::time::Duration::from_secs(1))
        .await;
    let r = t.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json["ready"], false);
    let op = t.tokens.acme_operator.clone();
    let s = t
        .post_json(
            "/api/v1/executions",
            Some(&op),
            &json!({"workflow": "hello"}),
        )
        .await;
    assert_eq!(s.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(s.json["code"], "unavailable");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let t = TestApp::with(
        |c| {
            let acme = c.tenants.get_mut("acme").unwrap();
            acme.rate = Some(1);
            acme.burst = Some(2);
        },
        "",
    )
    .await;
    let op = t.tokens.acme_operator.clone();
    let mut codes = Vec::new();
    for _ in 0..4 {
        let r = t
            .post_json(
                "/api/v1/executions",
                Some(&op),
                &json!({"workflow": "hello"}),
            )
            .await;
        codes.push(r.status.as_u16());
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(r.json["code"], "rate_limited");
            let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=2).contains(&retry), "{retry}");
            assert_eq!(r.json["retry_after_seconds"], retry);
        }
    }
    assert_eq!(codes, [202, 202, 429, 429]);
    // globex is unaffected.
    let g = t.tokens.globex_operator.clone();
    assert_eq!(
        t.post_json(
            "/api/v1/executions",
            Some(&g),
            &json!({"workflow": "hello"})
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    t.stop().await;
}
