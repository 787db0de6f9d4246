//! OIDC bearer tokens from a real OpenID provider (npm `oidc-provider`, `tests/interop/oidc`):
//! JWT access tokens (RS256 and ES256) authenticate through discovery and the issuer's JWKS,
//! and the guard applies to them like to API tokens; wrong-audience, wrong-issuer, expired,
//! forged, `alg: none` tokens and tokens replayed after a key rotation are refused, audited
//! and counted.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{TestApp, free_port};

pub(crate) fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/oidc")
}

/// A running OpenID provider; stopped when dropped (its stdin closes).
pub(crate) struct Provider {
    child: Child,
    _stdin: ChildStdin,
    pub(crate) issuer: String,
}

impl Provider {
    pub(crate) fn start(port: u16, keys: &Path, ttl_seconds: u32) -> Provider {
        assert!(
            harness().join("node_modules/oidc-provider").exists(),
            "the OpenID provider harness is not installed: run `npm ci` in tests/interop/oidc (scripts/test does it)"
        );
        let mut child = Command::new("node")
            .arg(harness().join("provider.mjs"))
            .args([
                "--port",
                &port.to_string(),
                "--token-ttl",
                &ttl_seconds.to_string(),
            ])
            .arg("--keys")
            .arg(keys)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the provider did not start: {e}: {line:?}"));
        Provider {
            child,
            _stdin: stdin,
            issuer: ready["issuer"].as_str().unwrap().to_owned(),
        }
    }

    /// A client-credentials access token (a JWT) for `client`; `resource` picks the audience.
    async fn token(&self, client: &str, resource: Option<&str>) -> String {
        let mut body = "grant_type=client_credentials".to_owned();
        if let Some(r) = resource {
            body.push_str(&format!("&resource={r}"));
        }
        let r: Value = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some(format!("{client}-secret")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token for {client}: {r}"))
            .to_owned()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn gen_keys(path: &Path) {
    let out = Command::new("node")
        .arg(harness().join("provider.mjs"))
        .arg("--gen-keys")
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(path, out.stdout).unwrap();
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

fn failures(t: &TestApp, reason: &str) -> u64 {
    t.app
        .metrics
        .auth_failures
        .with_label_values(&[reason])
        .get()
}

async fn refused(t: &TestApp, token: &str, reason: &str) {
    let before = failures(t, reason);
    let r = t.get("/api/v1/executions", Some(token)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{reason}: {}", r.json);
    assert_eq!(
        failures(t, reason),
        before + 1,
        "{reason} not counted: {}",
        r.json
    );
    let last = t
        .app
        .engine
        .store()
        .read()
        .unwrap()
        .audit_all(None, 100_000)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        serde_json::to_value(last.kind).unwrap(),
        json!("authentication_failed")
    );
    assert_eq!(last.detail["reason"], reason);
}

#[tokio::test(flavor = "multi_thread")]
async fn jwts_of_a_real_openid_provider_authenticate_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    gen_keys(&keys);
    let port = free_port();
    let op = Provider::start(port, &keys, 600);
    let issuer = op.issuer.clone();
    let t = TestApp::with(
        |c| {
            c.oidc.issuer = Some(issuer.clone());
            c.oidc.leeway = "1s".into();
            c.oidc.jwks_cache_ttl = "1s".into();
            c.oidc.algorithms = vec!["RS256".into(), "ES256".into()];
        },
        "",
    )
    .await;

    // RS256 and ES256 tokens run and read in their tenant.
    let acme = op.token("acme-operator", None).await;
    let r = t
        .post_json(
            "/api/v1/executions?wait=30s",
            Some(&acme),
            &json!({"workflow": "hello"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["submitted_by"], "oidc:acme-operator");
    let id = r.json["id"].as_str().unwrap().to_owned();
    let es = op.token("acme-operator-es256", None).await;
    assert_eq!(
        t.get(&format!("/api/v1/executions/{id}"), Some(&es))
            .await
            .status,
        StatusCode::OK
    );
    // The guard applies: other tenants see nothing, viewers do not run, admins reach all.
    let globex = op.token("globex-operator", None).await;
    let r = t
        .get(&format!("/api/v1/executions/{id}"), Some(&globex))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let viewer = op.token("acme-viewer", None).await;
    let r = t
        .post_json(
            "/api/v1/executions",
            Some(&viewer),
            &json!({"workflow": "hello"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let admin = op.token("root-admin", None).await;
    let r = t.get("/api/v1/executions?tenant=acme", Some(&admin)).await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1, "{}", r.json);

    // Wrong audience.
    let other = op
        .token("acme-operator", Some("https://other.example"))
        .await;
    refused(&t, &other, "wrong_audience").await;
    // Forged: claims changed under the provider's signature.
    let parts: Vec<&str> = acme.split('.').collect();
    let mut claims = payload(&acme);
    claims["tenant"] = json!("globex");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    refused(&t, &forged, "bad_signature").await;
    // alg none, and HMAC.
    let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    refused(&t, &none, "algorithm_not_allowed").await;
    let hs = format!("{}.{}.{}", b64(br#"{"alg":"HS256"}"#), parts[1], parts[2]);
    refused(&t, &hs, "algorithm_not_allowed").await;
    // Garbage and unknown API tokens.
    refused(&t, "not.a.jwt", "malformed").await;
    refused(&t, "mct_unknown", "unknown_token").await;

    // Another issuer holding the same keys: signature fine, issuer wrong.
    let other_issuer = Provider::start(free_port(), &keys, 600);
    let foreign = other_issuer.token("acme-operator", None).await;
    refused(&t, &foreign, "wrong_issuer").await;
    drop(other_issuer);

    // Expired: the provider restarts on the same issuer with 2 s tokens.
    drop(op);
    let op = Provider::start(port, &keys, 2);
    let short = op.token("acme-operator", None).await;
    assert_eq!(
        t.get("/api/v1/executions", Some(&short)).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    refused(&t, &short, "expired").await;

    // Key rotation: the provider restarts with new keys; the old key's tokens are refused
    // once the cached key set expires, the new key's are accepted.
    drop(op);
    let rotated = dir.path().join("rotated.json");
    gen_keys(&rotated);
    let op = Provider::start(port, &rotated, 600);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let fresh = op.token("acme-operator", None).await;
    assert_eq!(
        t.get("/api/v1/executions", Some(&fresh)).await.status,
        StatusCode::OK
    );
    refused(&t, &acme, "unknown_key").await;
    drop(op);
    t.stop().await;
}

/// When the issuer goes away after the keys expire, the last keys serve for
/// `oidc.jwks_max_stale` longer; with `0s`, tokens are refused as soon as a refresh fails.
#[tokio::test(flavor = "multi_thread")]
async fn the_last_keys_serve_while_the_issuer_is_unreachable_within_max_stale() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    gen_keys(&keys);
    let op = Provider::start(free_port(), &keys, 600);
    let app = |max_stale: &'static str| {
        let issuer = op.issuer.clone();
        TestApp::with(
            move |c| {
                c.oidc.issuer = Some(issuer);
                c.oidc.jwks_cache_ttl = "1s".into();
                c.oidc.jwks_max_stale = max_stale.into();
            },
            "",
        )
    };
    let tolerant = app("1h").await;
    let strict = app("0s").await;
    let token = op.token("acme-operator", None).await;
    for t in [&tolerant, &strict] {
        assert_eq!(
            t.get("/api/v1/executions", Some(&token)).await.status,
            StatusCode::OK
        );
    }
    drop(op);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        tolerant
            .get("/api/v1/executions", Some(&token))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(tolerant.app.metrics.oidc_stale_keys.get(), 1);
    refused(&strict, &token, "keys_unavailable").await;
    assert_eq!(strict.app.metrics.oidc_stale_keys.get(), 0);
    tolerant.stop().await;
    strict.stop().await;
}
