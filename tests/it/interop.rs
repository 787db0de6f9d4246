//! Interoperability with real peers (INTEROP.md): receipts exported as Sigstore bundles verify
//! offline with `@sigstore/verify`, and `/metrics` passes `promtool check metrics`. The tools
//! are installed by `scripts/test` (and `.ci/run`); a missing tool fails these tests with the
//! command that installs it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use crate::support::{TestApp, which};

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/sigstore")
}

fn require_node_modules() {
    assert!(
        harness().join("node_modules/@sigstore/verify").exists(),
        "the Sigstore harness is not installed: run `npm ci` in tests/interop/sigstore (scripts/test does it)"
    );
}

async fn bundle_verifies_with_sigstore_js(algorithm: &str) {
    require_node_modules();
    let t = TestApp::with(
        |c| {
            c.signing.algorithm = match algorithm {
                "ecdsa-p256" => maestro::config::KeyAlgorithm::EcdsaP256,
                _ => maestro::config::KeyAlgorithm::Ed25519,
            }
        },
        "",
    )
    .await;
    let op = t.tokens.acme_operator.clone();
    let e = t.run(&op, "artifacts").await;
    let id = e["id"].as_str().unwrap();
    let bundle = t
        .get(
            &format!("/api/v1/executions/{id}/receipt?format=sigstore"),
            Some(&op),
        )
        .await
        .json;
    let dir = tempfile::tempdir().unwrap();
    let bundle_path = dir.path().join("bundle.json");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&bundle_path, bundle.to_string()).unwrap();
    std::fs::write(&key_path, t.app.engine.signing().appliance.public().pem()).unwrap();
    let run = |b: &PathBuf, k: &PathBuf| {
        Command::new("node")
            .arg(harness().join("verify.mjs"))
            .arg(b)
            .arg(k)
            .output()
            .expect("node is installed")
    };
    let out = run(&bundle_path, &key_path);
    assert!(
        out.status.success(),
        "{algorithm}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok "));
    // Tampering is caught by the same verifier.
    let mut tampered = bundle.clone();
    let payload = tampered["dsseEnvelope"]["payload"]
        .as_str()
        .unwrap()
        .to_owned();
    let flipped = if payload.starts_with('e') {
        payload.replacen('e', "f", 1)
    } else {
        payload.replacen(&payload[..1], "e", 1)
    };
    tampered["dsseEnvelope"]["payload"] = serde_json::Value::String(flipped);
    std::fs::write(&bundle_path, tampered.to_string()).unwrap();
    assert_eq!(
        run(&bundle_path, &key_path).status.code(),
        Some(1),
        "{algorithm}: tampered bundle must fail"
    );
    t.stop().await;
}

#[tokio::test]
async fn ed25519_receipts_verify_with_sigstore_js() {
    bundle_verifies_with_sigstore_js("ed25519").await;
}

#[tokio::test]
async fn ecdsa_p256_receipts_verify_with_sigstore_js() {
    bundle_verifies_with_sigstore_js("ecdsa-p256").await;
}

#[tokio::test]
async fn metrics_pass_promtool() {
    let promtool = which("promtool")
        .expect("promtool is not installed: apt-get install prometheus (scripts/test does it)");
    let t = TestApp::new().await;
    let op = t.tokens.acme_operator.clone();
    for w in ["hello", "policy-deny", "timeout"] {
        t.run(&op, w).await;
    }
    let _ = t.get("/api/v2/nothing", None).await;
    let text = t.get("/metrics", None).await.json;
    let text = text.as_str().unwrap().to_owned();
    for family in [
        "mc_executions_submitted_total",
        "mc_executions_finished_total",
        "mc_commit_batch_size",
        "mc_submit_to_durable_seconds",
        "mc_log_size",
        "mc_receipts_signed_total",
        "mc_policy_decisions_total",
        "mc_http_requests_total",
        "mc_queue_depth",
        "mc_residency_violations_total",
        "mc_residency_violations_open",
        "mc_residency_audit_last_success_timestamp_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    t.stop().await;
}

/// The shipped alert rules are valid and their `promtool test rules` cases pass; every
/// metric they use is exported.
#[tokio::test(flavor = "multi_thread")]
async fn alert_rules_pass_promtool() {
    let promtool = which("promtool")
        .expect("promtool is not installed: apt-get install prometheus (scripts/test does it)");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rules = std::fs::read_to_string(format!("{dir}/alerts.yml")).unwrap();
    // Every alert has promtool test cases.
    let cases = std::fs::read_to_string(format!("{dir}/alerts.test.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 9, "{alerts:?}");
    for a in &alerts {
        assert!(
            cases.contains(&format!("alertname: {a}\n")),
            "alert {a} has no case in alerts.test.yml"
        );
    }
    // The metrics the rules and the Grafana dashboards query.
    let mut queried = rules.clone();
    let grafana = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana");
    for e in std::fs::read_dir(grafana).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "json") {
            queried.push_str(&std::fs::read_to_string(e.path()).unwrap());
        }
    }
    // A tiny rate for acme, so that a rejection is counted.
    let t = TestApp::with(
        |c| {
            let acme = c.tenants.get_mut("acme").unwrap();
            acme.rate = Some(1);
            acme.burst = Some(1);
        },
        "",
    )
    .await;
    // Labelled series appear once something happened: a console view, a refused token, a
    // cross-tenant attempt, a rate-limited submission.
    let (acme_op, globex_op) = (
        t.tokens.acme_operator.clone(),
        t.tokens.globex_operator.clone(),
    );
    assert_eq!(t.get("/", Some(&t.tokens.acme_viewer)).await.status, 200);
    assert_eq!(
        t.get("/api/v1/executions", Some("mct_forged")).await.status,
        401
    );
    let theirs = t.run(&globex_op, "hello").await;
    let path = format!("/api/v1/executions/{}", theirs["id"].as_str().unwrap());
    assert_eq!(t.get(&path, Some(&acme_op)).await.status, 404);
    // Per-golden series exist once a golden ran.
    let installed = tokio::task::block_in_place(|| t.app.install_goldens()).unwrap();
    assert!(installed.iter().all(|i| i.error.is_none()), "{installed:?}");
    let acme = maestro::domain::ids::TenantId::new("acme").unwrap();
    let actor = maestro::app::golden::actor(Some(&acme));
    let runs = t
        .app
        .run_goldens(&acme, &["hello".to_owned()], &actor)
        .await
        .unwrap();
    assert!(runs[0].passed, "{runs:?}");
    let mut limited = false;
    for _ in 0..3 {
        let body = serde_json::json!({"workflow": "hello"});
        limited |= t
            .post_json("/api/v1/executions", Some(&acme_op), &body)
            .await
            .status
            == 429;
    }
    assert!(limited);
    let text = t.get("/metrics", None).await.json;
    let text = text.as_str().unwrap();
    let mut missing = BTreeSet::new();
    for word in queried
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("mc_") && w.len() > 3)
    {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                word.strip_suffix(s)
                    .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
            })
            .unwrap_or(word);
        if !text.contains(&format!("# TYPE {family} ")) {
            missing.insert(family.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "the alert rules or a dashboard use {missing:?}, which /metrics does not export"
    );
    t.stop().await;
}

/// The receipt format can be checked without Maestro: `scripts/verify-receipt-without-maestro`
/// (openssl and python3 only) agrees with our verifier on real receipts of both key types and
/// on every conformance vector.
#[tokio::test]
async fn receipts_verify_with_openssl_and_python_alone() {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/verify-receipt-without-maestro");
    let run = |receipt: &std::path::Path, key: &std::path::Path| {
        Command::new(&script)
            .arg(receipt)
            .arg(key)
            .output()
            .unwrap()
            .status
            .code()
    };
    for algorithm in [
        maestro::config::KeyAlgorithm::Ed25519,
        maestro::config::KeyAlgorithm::EcdsaP256,
    ] {
        let t = TestApp::with(|c| c.signing.algorithm = algorithm, "").await;
        let op = t.tokens.acme_operator.clone();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, t.app.engine.signing().appliance.public().pem()).unwrap();
        for workflow in ["artifacts", "policy-deny", "hello"] {
            let e = t.run(&op, workflow).await;
            let id = e["id"].as_str().unwrap();
            let r = t
                .get(&format!("/api/v1/executions/{id}/receipt"), Some(&op))
                .await
                .json;
            let path = dir.path().join(format!("{workflow}.json"));
            std::fs::write(&path, r.to_string()).unwrap();
            assert_eq!(run(&path, &key), Some(0), "{algorithm:?} {workflow}");
        }
        t.stop().await;
    }
    let vectors = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance/receipts");
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vectors.join("cases.json")).unwrap())
            .unwrap();
    for case in cases["cases"].as_array().unwrap() {
        if case.get("origin").is_some() {
            continue; // the script does not pin an origin
        }
        let code = run(
            &vectors.join(case["receipt"].as_str().unwrap()),
            &vectors.join(case["key"].as_str().unwrap()),
        );
        let expected = if case["valid"] == true { 0 } else { 1 };
        assert_eq!(code, Some(expected), "{}", case["name"]);
    }
}
