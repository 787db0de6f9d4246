//! The isolation report against a live appliance: every check passes on a sound appliance and
//! the report is archived as signed evidence; a permissive isolation policy makes it fail and
//! say where; Markdown and a real PDF (its text read back with `pdftotext`) from the CLI
//! against a running server.

use serde_json::{Value, json};

use crate::support::TestApp;

fn names(checks: &Value) -> Vec<String> {
    checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

fn failed(report: &Value) -> Vec<String> {
    ["checks", "boundaries"]
        .iter()
        .flat_map(|k| report[k].as_array().unwrap().clone())
        .filter(|c| c["passed"] == false)
        .map(|c| format!("{}: {}", c["name"], c["detail"]))
        .collect()
}

async fn create(t: &TestApp, token: &str) -> crate::support::Resp {
    let r = t
        .post_json("/api/v1/reports/isolation", Some(token), &json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    r
}

#[tokio::test]
async fn a_sound_appliance_passes_and_the_report_is_archived_as_signed_evidence() {
    let t = TestApp::new().await;
    // acme has data; globex has none, so its probe makes a canary run to aim at.
    t.run(&t.tokens.acme_operator, "hello").await;
    let r = create(&t, &t.tokens.admin).await;
    let report = &r.json["report"];
    assert_eq!(report["passed"], true, "{:#?}", failed(report));
    let checks = names(&report["checks"]);
    for expected in [
        "control: each tenant's probe reads its own data",
        "another tenant's execution by id",
        "another tenant's receipt by digest",
        "another tenant's decision explanation",
        "another tenant's audit log",
        "a submission into another tenant",
        "path traversal to another tenant's object",
        "refused credentials: an unsigned JWT (alg none)",
        "refused credentials: a JWT signed with HMAC (HS256)",
        "a role the actor lacks (viewer submits)",
    ] {
        assert!(
            checks.contains(&expected.to_owned()),
            "{expected} missing: {checks:?}"
        );
    }
    let a = &report["attempts"];
    // Two tenants, both directions, 13 recorded attempts each.
    assert_eq!(a["probe_attempts"], 26, "{a}");
    assert_eq!(a["probe_audited"], 26);
    assert_eq!(a["probe_counted"], 26);
    assert_eq!(a["outside"], 0);
    assert_eq!(report["evidence"]["receipts"].as_array().unwrap().len(), 2);
    assert_eq!(report["evidence"]["audit_chain"], "verified");
    // Globex's canary run is marked synthetic.
    let globex = t
        .get(
            "/api/v1/executions?canary=true",
            Some(&t.tokens.globex_operator),
        )
        .await;
    assert_eq!(globex.json["items"].as_array().unwrap().len(), 1);

    // Archived: readable by id with its signature checked, and its creation audited.
    let id = report["id"].as_str().unwrap();
    let back = t
        .get(
            &format!("/api/v1/reports/isolation/{id}"),
            Some(&t.tokens.admin),
        )
        .await;
    assert_eq!(back.status, 200, "{}", back.json);
    assert_eq!(back.json["report"], *report);
    assert_eq!(back.json["digest"], r.json["digest"]);
    let audit = t
        .get("/api/v1/audit?limit=1000", Some(&t.tokens.admin))
        .await;
    let archived: Vec<&Value> = audit.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "evidence_archived")
        .collect();
    assert_eq!(archived.len(), 1);
    assert_eq!(archived[0]["detail"]["id"], id);
    assert_eq!(archived[0]["detail"]["digest"], r.json["digest"]);
    // A tenant's operator may not run or read the appliance's report.
    let denied = t
        .post_json(
            "/api/v1/reports/isolation",
            Some(&t.tokens.acme_operator),
            &json!({}),
        )
        .await;
    assert_eq!(denied.status, 403, "{}", denied.json);
    let hidden = t
        .get(
            &format!("/api/v1/reports/isolation/{id}"),
            Some(&t.tokens.acme_operator),
        )
        .await;
    assert_eq!(hidden.status, 404, "{}", hidden.json);
    t.stop().await;
}

#[tokio::test]
async fn a_tenant_auditor_gets_a_report_about_its_own_tenant() {
    let t = TestApp::new().await;
    let r = t
        .post_json(
            "/api/v1/reports/isolation",
            Some(&t.tokens.acme_auditor),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let report = &r.json["report"];
    assert_eq!(report["scope"], "acme");
    assert_eq!(report["tenants"], json!(["acme"]));
    assert_eq!(report["passed"], true, "{:#?}", failed(report));
    // Nothing was written into globex, which holds no data to aim at; acme's attempts on it
    // were not made, globex's probe still attacked acme.
    let globex = t
        .get("/api/v1/executions", Some(&t.tokens.globex_operator))
        .await;
    assert_eq!(globex.json["items"], json!([]), "{}", globex.json);
    assert!(names(&report["checks"]).contains(&"tenants without data to aim at".to_owned()));
    assert_eq!(report["attempts"]["probe_attempts"], 13);
    // Readable by acme, hidden from globex like a missing report.
    let id = report["id"].as_str().unwrap();
    let path = format!("/api/v1/reports/isolation/{id}");
    assert_eq!(t.get(&path, Some(&t.tokens.acme_viewer)).await.status, 200);
    let other = t.get(&path, Some(&t.tokens.globex_auditor)).await;
    assert_eq!(other.status, 404, "{}", other.json);
    t.stop().await;
}

/// Copies the shipped policies into `dir`, with a cross-tenant read grant that forgot to ask
/// for the auditor role and the policy data (the mistake the report exists to catch).
fn permissive_policies(dir: &std::path::Path) {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy/rego");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        if name.ends_with("_test.rego") || !name.ends_with(".rego") {
            continue;
        }
        let mut text = std::fs::read_to_string(&p).unwrap();
        if name == "isolation.rego" {
            let grant = "\t\"auditor\" in input.actor.roles\n\tinput.subject.tenant in object.get(data.mc.cross_tenant_readers, input.actor.subject, [])\n";
            assert!(
                text.contains(grant),
                "the shipped grant changed: update this test"
            );
            text = text.replace(grant, "");
        }
        std::fs::write(dir.join(name), text).unwrap();
    }
}

#[tokio::test]
async fn a_permissive_isolation_policy_fails_the_report_and_it_says_where() {
    let policies = tempfile::tempdir().unwrap();
    permissive_policies(policies.path());
    let dir = policies.path().to_owned();
    let t = TestApp::with(move |c| c.policy.dir = Some(dir), "").await;
    t.run(&t.tokens.acme_operator, "hello").await;
    t.run(&t.tokens.globex_operator, "hello").await;
    let r = create(&t, &t.tokens.admin).await;
    let report = &r.json["report"];
    assert_eq!(report["passed"], false, "{:#}", report["checks"]);
    let failures = failed(report);
    for leaked in [
        "another tenant named in a list query",
        "another tenant's manifest name in a filter",
        "another tenant named on an object",
        "another tenant's audit log",
    ] {
        let f = failures
            .iter()
            .find(|f| f.contains(leaked))
            .unwrap_or_else(|| panic!("{leaked} did not fail: {failures:#?}"));
        assert!(f.contains("with the victim's data"), "{f}");
    }
    // An id alone is looked up in the caller's own tenant only, so nothing leaks there, but
    // the attempt is no longer recorded, and the report says so.
    let by_id = failures
        .iter()
        .find(|f| f.contains("another tenant's execution by id"))
        .unwrap();
    assert!(
        by_id.contains("0 cross_tenant_denied audit events instead of 1"),
        "{by_id}"
    );
    assert!(!by_id.contains("victim's data"), "{by_id}");
    // Writes stay denied.
    assert!(
        !failures
            .iter()
            .any(|f| f.contains("a submission into another tenant")),
        "{failures:#?}"
    );
    // The reads policy allowed were recorded as cross-tenant reads.
    assert!(report["attempts"]["allowed_reads"].as_u64().unwrap() >= 8);
    let md = t
        .get(
            &format!(
                "/api/v1/reports/isolation/{}",
                report["id"].as_str().unwrap()
            ),
            Some(&t.tokens.admin),
        )
        .await;
    assert_eq!(md.json["report"]["passed"], false);
    t.stop().await;
}

#[test]
fn the_cli_writes_markdown_and_a_real_pdf_from_a_running_server() {
    use crate::support::{Server, cli, config_text, free_port, which};
    let pdftotext = which("pdftotext")
        .expect("pdftotext is not installed: apt-get install poppler-utils (scripts/test does it)");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = dir.path().join("data");
    let (text, tokens) = config_text(&data, &format!("127.0.0.1:{port}"), "");
    let config = dir.path().join("maestro.toml");
    std::fs::write(&config, text).unwrap();
    let mut server = Server::start(&config, port);
    let url = server.url.clone();
    let run = |args: &[&str]| {
        cli(
            args,
            &[
                ("MAESTRO_URL", url.as_str()),
                ("MAESTRO_TOKEN", tokens.admin.as_str()),
            ],
            dir.path(),
        )
    };
    let (code, out, err) = run(&[
        "--output",
        "json",
        "report",
        "isolation",
        "--format",
        "pdf",
        "--out",
        "report.pdf",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["passed"], true);
    let pdf = dir.path().join("report.pdf");
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    let extracted = std::process::Command::new(&pdftotext)
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(extracted.status.success());
    let text = String::from_utf8_lossy(&extracted.stdout).replace('\n', " ");
    for needle in [
        "Tenant Isolation Report",
        "Chaos tests: PASS",
        "Resource boundaries verified",
        "Cross-tenant access attempts: count=0",
        "another tenant's execution by id",
        "an unsigned JWT (alg none)",
        "the audit log's hash chain verifies",
        summary["id"].as_str().unwrap(),
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} not in the PDF's text: {text}"
        );
    }
    // The archived report renders again, byte for byte, as Markdown.
    let id = summary["id"].as_str().unwrap();
    let (code, _, err) = run(&["report", "isolation", "--id", id, "--out", "a.md"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["report", "isolation", "--id", id, "--out", "b.md"]);
    assert_eq!(code, 0, "{err}");
    let md = std::fs::read_to_string(dir.path().join("a.md")).unwrap();
    assert_eq!(
        md,
        std::fs::read_to_string(dir.path().join("b.md")).unwrap()
    );
    assert!(md.starts_with("# Tenant Isolation Report"), "{md}");
    assert!(md.contains(&format!("evidence `{id}`")), "{md}");
    // A tenant's operator is refused (exit 9), a missing report is not found (exit 5).
    let (code, _, err) = cli(
        &["report", "isolation", "--out", "x.md"],
        &[
            ("MAESTRO_URL", url.as_str()),
            ("MAESTRO_TOKEN", tokens.acme_operator.as_str()),
        ],
        dir.path(),
    );
    assert_eq!(code, 9, "{err}");
    let (code, _, _) = run(&["report", "isolation", "--id", "ir_missing", "--out", "x.md"]);
    assert_eq!(code, 5);
    // On the data directory, with the server stopped: the same checks, in process.
    server.kill9();
    let (code, out, err) = cli(
        &[
            "--config",
            config.to_str().unwrap(),
            "report",
            "isolation",
            "--tenant",
            "globex",
            "--out",
            "local.md",
        ],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let local = std::fs::read_to_string(dir.path().join("local.md")).unwrap();
    assert!(local.contains("| Scope | tenant globex |"), "{local}");
}
