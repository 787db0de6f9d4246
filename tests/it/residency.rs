//! Residency end to end: a run that admission cannot judge (its location comes from an
//! output) writes outside the tenant's region; the auditor finds it, the API shows it only
//! to its tenant, enforcing blocks the next run into that location, a hand resolution is
//! audited and lifts the block. The drills run through the real binary.

use serde_json::{Value, json};

use crate::support::TestApp;

/// The artifact's location is computed at run time, so admission sees no location.
const SNEAKY: &str = r#"name: sneaky
version: "1.0.0"
region: eu-west
tasks:
  - {id: pick, uses: builtin/echo, with: {message: us-bucket}}
  - id: save
    uses: builtin/artifact
    needs: [pick]
    with: {name: r.txt, location: "${{ tasks.pick.outputs.message }}", content: data}
"#;

const DIRECT: &str = r#"name: direct
version: "1.0.0"
region: eu-west
tasks:
  - {id: save, uses: builtin/artifact, with: {name: r.txt, location: us-bucket, content: data}}
"#;

/// Submits and waits; answers with the execution (also when denied: it is recorded).
async fn submit(t: &TestApp, token: &str, yaml: &str) -> Value {
    let r = t
        .post_yaml("/api/v1/executions?wait=30s", token, yaml)
        .await;
    match r.json.get("execution") {
        Some(e) if r.status == 403 => e.clone(),
        _ => r.json,
    }
}

/// Every deny reason code of an execution's decisions.
fn codes(e: &Value) -> Vec<&str> {
    e["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["reasons"].as_array().unwrap())
        .filter_map(|r| r["code"].as_str())
        .collect()
}

#[tokio::test]
async fn the_auditor_catches_what_admission_could_not_and_enforcement_blocks() {
    let t = TestApp::with(|c| c.features.residency_auditor_enforce = true, "").await;
    let acme = t.tokens.acme_operator.clone();
    let e = submit(&t, &acme, SNEAKY).await;
    assert_eq!(e["status"], "succeeded", "{e}");

    // An appliance-wide admin runs the auditor.
    let audit = t
        .post_json("/api/v1/residency/audit", Some(&t.tokens.admin), &json!({}))
        .await;
    assert_eq!(audit.status, 200, "{}", audit.json);
    assert_eq!(audit.json["open"], 4, "{}", audit.json);

    // acme's auditor sees its violations; globex's sees none of them.
    let mine = t
        .get("/api/v1/residency/violations", Some(&t.tokens.acme_auditor))
        .await;
    assert_eq!(mine.status, 200);
    let items = mine.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert!(
        items
            .iter()
            .all(|v| v["execution"] == e["id"] && v["location"] == "us-bucket")
    );
    assert_eq!(mine.json["enforced"], true);
    let theirs = t
        .get(
            "/api/v1/residency/violations",
            Some(&t.tokens.globex_auditor),
        )
        .await;
    assert_eq!(theirs.json["items"], json!([]));
    // A tenant-bound audit answers with its own counts only.
    let g = t
        .post_json(
            "/api/v1/residency/audit",
            Some(&t.tokens.globex_auditor),
            &json!({}),
        )
        .await;
    assert_eq!(
        (g.json["open"].clone(), g.json["receipts"].clone()),
        (json!(0), json!(0)),
        "{}",
        g.json
    );

    // Enforcing: the next run into us-bucket is denied and says why.
    let denied = submit(&t, &acme, SNEAKY).await;
    assert!(
        codes(&denied).contains(&"residency_violation_open"),
        "{denied}"
    );
    assert!(!t.app.rollout_gate().open);

    // Resolving needs the audit role, a reason, and is audited.
    let id = items[0]["id"].as_str().unwrap();
    let path = format!("/api/v1/residency/violations/{id}/resolve");
    let r = t
        .post_json(&path, Some(&acme), &json!({"reason": "moved"}))
        .await;
    assert_eq!(r.status, 403, "{}", r.json);
    let r = t
        .post_json(&path, Some(&t.tokens.acme_auditor), &json!({"reason": " "}))
        .await;
    assert_eq!(r.status, 400, "{}", r.json);
    let r = t
        .post_json(
            &path,
            Some(&t.tokens.globex_auditor),
            &json!({"reason": "x"}),
        )
        .await;
    assert_eq!(r.status, 404, "another tenant's violation is not found");
    for v in items {
        let p = format!(
            "/api/v1/residency/violations/{}/resolve",
            v["id"].as_str().unwrap()
        );
        let r = t
            .post_json(
                &p,
                Some(&t.tokens.acme_auditor),
                &json!({"reason": "copied back to eu-bucket, deleted from us-bucket"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
        assert_eq!(r.json["resolved"]["by"], "token:acme-auditor");
    }
    let again = t
        .post_json(&path, Some(&t.tokens.acme_auditor), &json!({"reason": "x"}))
        .await;
    assert_eq!(again.status, 409);
    let events = t.get("/api/v1/audit", Some(&t.tokens.acme_auditor)).await;
    assert!(
        events.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "residency_violation_resolved"),
        "{}",
        events.json
    );
    // Resolved: runs go again, a full audit does not reopen what an operator resolved.
    let full = t
        .post_json(
            "/api/v1/residency/audit?full=true",
            Some(&t.tokens.admin),
            &json!({}),
        )
        .await;
    assert_eq!(
        (full.json["new"].clone(), full.json["reopened"].clone()),
        (json!(0), json!(0))
    );
    assert!(t.app.rollout_gate().open);
    assert_eq!(submit(&t, &acme, SNEAKY).await["status"], "succeeded");

    // Metrics: found once each, none open.
    let m = t.get("/metrics", None).await;
    let text = m.json.as_str().unwrap();
    assert!(
        text.contains("mc_residency_violations_total{region=\"us-east\",tenant=\"acme\"} 4"),
        "{text}"
    );
}

#[tokio::test]
async fn admission_denies_what_it_can_see_and_the_node_region() {
    let t = TestApp::with(|c| c.node_region = Some("us-east".into()), "").await;
    let e = submit(&t, &t.tokens.acme_operator, DIRECT).await;
    assert_eq!(
        codes(&e),
        [
            "location_outside_region",
            "location_region_not_allowed",
            "node_outside_region"
        ],
        "{e}"
    );
}

fn drill(args: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(["--output", "json", "drill"])
        .args(args)
        .env("MAESTRO_LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_mis_tagged_bucket_drill_flags_every_receipt_and_blocks_the_rollout() {
    let r = drill(&["mis-tagged-bucket", "--runs", "4"]);
    assert_eq!(r["passed"], true, "{r}");
    assert_eq!(r["steps"].as_array().unwrap().len(), 5);
}

#[test]
fn the_residency_corpus_drill_misses_nothing_and_flags_nothing_clean() {
    let r = drill(&["residency-corpus", "--size", "3000", "--seed", "42"]);
    assert_eq!(r["passed"], true, "{r}");
}
