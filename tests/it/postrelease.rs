//! Post-release validation with the real binary: a start validates (canaries, every receipt,
//! the log, every decision replayed) before `/readyz` turns true, archives a signed,
//! deterministic evidence bundle, and exports the result; the drill (a wrong trusted key
//! breaks receipt verification) turns readiness false, archives the failure and sets the
//! metric the alert rule fires on; a fixed restart validates again. In-process: a new
//! version makes the start due.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::golden::{demo, token};
use crate::support::cli;

fn get(url: &str, token: &str, path: &str) -> (u16, Vec<u8>) {
    let r = reqwest::blocking::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .unwrap();
    (r.status().as_u16(), r.bytes().unwrap().to_vec())
}

fn scrape(url: &str, name: &str) -> f64 {
    reqwest::blocking::get(format!("{url}/metrics"))
        .unwrap()
        .text()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.parse().ok())
        .unwrap_or_else(|| panic!("no {name}"))
}

/// The files of an evidence bundle.
fn files(bundle: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    maestro::archive::read(bundle, &maestro::archive::Limits::SMALL, |e| {
        let mut v = Vec::new();
        e.data.read_to_end(&mut v).unwrap();
        out.insert(e.path, v);
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn a_start_validates_before_ready_archives_evidence_and_the_drill_turns_readiness_false() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let (server, url, tokens) = demo(cwd, "");
    let admin = token(&tokens, "admin");
    let acme = token(&tokens, "acme-operator");

    // Ready only once validated: the demo's first start is due.
    let ready: Value = reqwest::blocking::get(format!("{url}/readyz"))
        .unwrap()
        .json()
        .unwrap();
    let check = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "postrelease")
        .unwrap();
    // The summary is printed before validation ends; wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let report: Value;
    loop {
        let (status, body) = get(&url, &admin, "/api/v1/postrelease");
        if status == 200 {
            report = serde_json::from_slice(&body).unwrap();
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no validation: {check}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(report["trigger"], "start");
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["canaries", "receipts", "log", "decisions"]);
    assert_eq!(report["checks"][0]["checked"], 3, "{report}");
    assert!(
        report["checks"][1]["checked"].as_u64().unwrap() >= 12,
        "{report}"
    );
    assert!(
        report["checks"][3]["checked"].as_u64().unwrap() >= 12,
        "{report}"
    );
    for c in report["canaries"].as_array().unwrap() {
        let id = c["execution"].as_str().unwrap();
        let (_, body) = get(&url, &acme, &format!("/api/v1/executions/{id}"));
        let exec: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(exec["canary"], true, "{exec}");
    }
    assert!(
        reqwest::blocking::get(format!("{url}/readyz"))
            .unwrap()
            .status()
            .is_success()
    );
    assert_eq!(scrape(&url, "mc_postrelease_success_total"), 1.0);
    assert_eq!(scrape(&url, "mc_postrelease_last_passed"), 1.0);

    // The evidence bundle: its digest is the one reported, every file is in the index, and
    // the index is signed by the appliance key.
    let id = report["id"].as_str().unwrap();
    let (status, bundle) = get(&url, &admin, &format!("/api/v1/postrelease/{id}/evidence"));
    assert_eq!(status, 200);
    assert_eq!(
        report["evidence_digest"],
        maestro::domain::ids::Digest::of(&bundle).to_string()
    );
    let f = files(&bundle);
    for name in [
        "report.json",
        "checkpoint.txt",
        "index.txt",
        "index.dsse.json",
    ] {
        assert!(f.contains_key(name), "{name} missing: {:?}", f.keys());
    }
    assert_eq!(f.keys().filter(|k| k.starts_with("canaries/")).count(), 3);
    let index = String::from_utf8(f["index.txt"].clone()).unwrap();
    let listed = maestro::domain::disclosure::parse_index(&index).unwrap();
    assert_eq!(listed.len(), f.len() - 2);
    for (digest, path) in &listed {
        assert_eq!(
            *digest,
            maestro::domain::ids::Digest::of(&f[path]),
            "{path}"
        );
    }
    let (code, pem, err) = cli(
        &["keys", "show", "--pem", "--server", &url, "--token", &admin],
        &[],
        cwd,
    );
    assert_eq!(code, 0, "{err}");
    let key = maestro::attest::keys::PublicKey::from_pem(&pem).unwrap();
    let envelope: maestro::attest::dsse::Envelope =
        serde_json::from_slice(&f["index.dsse.json"]).unwrap();
    let verified = envelope
        .verify(maestro::app::postrelease::INDEX_PAYLOAD_TYPE, &[key])
        .unwrap();
    assert_eq!(verified.payload, index.as_bytes());

    // Appliance-wide data: tenant tokens are refused.
    assert_eq!(get(&url, &acme, "/api/v1/postrelease").0, 403);
    // The console's status page: every viewer sees the verdicts, appliance-wide ones the
    // details and the evidence.
    let page = |token: &str| String::from_utf8(get(&url, token, "/").1).unwrap();
    let admin_page = page(&admin);
    assert!(admin_page.contains("Validation"), "{admin_page}");
    assert!(admin_page.contains(id), "the evidence id is shown");
    assert!(admin_page.contains("receipts: signature"), "{admin_page}");
    let acme_page = page(&acme);
    assert!(acme_page.contains("Validation"));
    assert!(
        !acme_page.contains(id),
        "a tenant viewer sees no evidence id"
    );
    assert!(
        !acme_page.contains("receipts: signature"),
        "a tenant viewer sees no counts"
    );
    // On demand, from the CLI, with the evidence saved.
    let (code, out, err) = cli(
        &[
            "validate",
            "post-release",
            "--server",
            &url,
            "--token",
            &admin,
            "--evidence-out",
            "ev.tar.gz",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASSED"), "{out}");
    assert!(out.contains("consistent with tree size"), "{out}");
    assert!(files(&std::fs::read(cwd.join("ev.tar.gz")).unwrap()).contains_key("consistency.json"));
    drop(server);

    // The drill: receipts must verify with a key that never signed them.
    let wrong =
        maestro::attest::keys::SigningKey::generate(maestro::attest::keys::Algorithm::Ed25519)
            .unwrap();
    std::fs::write(cwd.join("wrong.pem"), wrong.public().pem()).unwrap();
    let (server, url, _) = demo(
        cwd,
        &format!(
            "[postrelease]\ntrusted_keys = [{:?}]\n",
            cwd.join("wrong.pem").display().to_string()
        ),
    );
    let (code, out, _) = cli(
        &[
            "validate",
            "post-release",
            "--server",
            &url,
            "--token",
            &admin,
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("FAIL receipts"), "{out}");
    assert!(out.contains("signature"), "{out}");
    let ready = reqwest::blocking::get(format!("{url}/readyz")).unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let ready: Value = ready.json().unwrap();
    assert!(
        ready.to_string().contains("post-release validation failed"),
        "{ready}"
    );
    assert_eq!(scrape(&url, "mc_postrelease_failure_total"), 1.0);
    assert_eq!(scrape(&url, "mc_postrelease_last_passed"), 0.0);
    let (_, body) = get(&url, &admin, "/api/v1/postrelease");
    let failed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(failed["passed"], false);
    let id = failed["id"].as_str().unwrap();
    let (status, bundle) = get(&url, &admin, &format!("/api/v1/postrelease/{id}/evidence"));
    assert_eq!(status, 200, "the failure is archived");
    let archived: Value = serde_json::from_slice(&files(&bundle)["report.json"]).unwrap();
    assert_eq!(archived["passed"], false);
    assert_eq!(archived["checks"][1]["passed"], false);
    drop(server);

    // Fixed: the next start is due again (the last validation failed) and passes.
    let (_server, url, _) = demo(cwd, "");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !reqwest::blocking::get(format!("{url}/readyz"))
        .unwrap()
        .status()
        .is_success()
    {
        assert!(std::time::Instant::now() < deadline, "not ready again");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (_, body) = get(&url, &admin, "/api/v1/postrelease");
    let fixed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(fixed["passed"], true, "{fixed}");
    assert_eq!(fixed["trigger"], "start");
}

#[tokio::test]
async fn a_start_with_another_version_is_due_and_records_the_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    let config = maestro::config::Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    let app = std::sync::Arc::new(maestro::app::App::start(config.clone()).await.unwrap());
    assert!(app.post_release_due(), "never validated");
    let r = app.validate_post_release("demand").await.unwrap();
    assert!(r.passed, "{r:?}");
    assert!(!app.post_release_due());
    app.engine.shutdown(std::time::Duration::from_secs(1)).await;
    drop(app);
    // The same version again: nothing to do.
    let app = std::sync::Arc::new(maestro::app::App::start(config.clone()).await.unwrap());
    assert!(!app.post_release_due());
    app.engine
        .store()
        .set_meta("appliance_version", b"0.0.1")
        .unwrap();
    app.engine.shutdown(std::time::Duration::from_secs(1)).await;
    drop(app);
    // Another version was recorded last: due, and the report names it.
    let app = std::sync::Arc::new(maestro::app::App::start(config).await.unwrap());
    assert!(app.post_release_due());
    let r = app.validate_post_release("start").await.unwrap();
    assert_eq!(r.previous_version.as_deref(), Some("0.0.1"));
    assert!(r.passed, "{r:?}");
    app.engine.shutdown(std::time::Duration::from_secs(1)).await;
}

/// The shipped pipeline sample works as written against a real appliance:
/// `.github/workflows/mc-postrelease.yml`'s steps (all but building the CLI) with its
/// secrets filled in, and `scripts/verify_receipt.sh` within them.
#[test]
fn the_sample_pipeline_and_verify_receipt_sh_work_with_the_real_cli() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    // The pipeline runs in a checkout: the scripts it calls.
    std::fs::create_dir(cwd.join("scripts")).unwrap();
    for script in ["verify_receipt.sh", "verify-receipt-without-maestro"] {
        std::fs::copy(
            root.join("scripts").join(script),
            cwd.join("scripts").join(script),
        )
        .unwrap();
    }
    let (_server, url, tokens) = demo(cwd, "");
    let admin = token(&tokens, "admin");
    let acme = token(&tokens, "acme-operator");
    let text = std::fs::read_to_string(root.join(".github/workflows/mc-postrelease.yml")).unwrap();
    let doc = maestro::domain::validate::parse_document(&text).unwrap();
    let steps = doc["jobs"]["postrelease"]["steps"].as_array().unwrap();
    let bin_dir = crate::support::bin().parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let mut ran = Vec::new();
    for step in steps {
        let (Some(name), Some(run)) = (step["name"].as_str(), step["run"].as_str()) else {
            continue;
        };
        if run.contains("cargo build") {
            continue;
        }
        let run = run.replace("${{ secrets.MAESTRO_ADMIN_TOKEN }}", &admin);
        assert!(!run.contains("${{"), "{name}: an unfilled expression");
        let out = std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &run])
            .current_dir(cwd)
            .env("PATH", &path)
            .env("MAESTRO_URL", &url)
            .env("MAESTRO_TOKEN", &acme)
            .env_remove("MAESTRO_CONFIG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "step {name:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran.push(name.to_owned());
    }
    assert_eq!(ran.len(), 4, "{ran:?}");
    for kept in [
        "postrelease-evidence.tar.gz",
        "receipt-evidence/receipt.json",
        "receipt-evidence/keys.json",
        "receipt-evidence/appliance.pem",
    ] {
        assert!(cwd.join(kept).is_file(), "{kept} was not kept");
    }
    let receipt: Value =
        serde_json::from_slice(&std::fs::read(cwd.join("receipt-evidence/receipt.json")).unwrap())
            .unwrap();
    assert!(receipt["logEntry"]["logIndex"].is_u64(), "{receipt}");
}
