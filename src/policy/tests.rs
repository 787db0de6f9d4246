//! Policy engine tests: the shipped policies decide as documented, v0 files load, limits
//! stop hostile policies, explanations name the rules that fired.

use super::*;
use serde_json::json;

fn shipped() -> Policies {
    Policies::load_appliance(PolicyBundle::embedded(), Limits::default()).unwrap()
}

fn isolation_input(
    actor_tenant: Value,
    roles: &[&str],
    action: &str,
    subject_tenant: &str,
) -> Value {
    json!({
        "actor": {"subject": "token:t", "tenant": actor_tenant, "roles": roles},
        "action": action,
        "subject": {"tenant": subject_tenant, "kind": "execution", "id": "ex_1"},
        "route": "GET /api/v1/executions/{id}",
    })
}

#[test]
fn isolation_keeps_tenants_apart() {
    let p = shipped();
    let v = p
        .evaluate(
            "mc.isolation",
            &isolation_input(json!("acme"), &["viewer"], "read", "acme"),
        )
        .unwrap();
    assert!(v.allow);
    let v = p
        .evaluate(
            "mc.isolation",
            &isolation_input(json!("acme"), &["admin"], "read", "globex"),
        )
        .unwrap();
    assert!(!v.allow);
    assert_eq!(v.reasons[0].code, "cross_tenant_access");
    let v = p
        .evaluate(
            "mc.isolation",
            &isolation_input(json!("acme"), &["viewer"], "run", "acme"),
        )
        .unwrap();
    assert!(!v.allow);
    assert_eq!(v.reasons[0].code, "role_missing");
    let v = p
        .evaluate(
            "mc.isolation",
            &isolation_input(Value::Null, &["admin"], "run", "globex"),
        )
        .unwrap();
    assert!(v.allow, "appliance admins may act on any tenant");
    let v = p
        .evaluate(
            "mc.isolation",
            &isolation_input(json!("globex"), &["auditor"], "read", "acme"),
        )
        .unwrap();
    assert!(!v.allow, "auditors need a grant");
}

#[test]
fn auditors_read_across_tenants_only_where_data_grants_it() {
    let bundle = PolicyBundle::embedded()
        .with_data(&json!({"mc": {"cross_tenant_readers": {"token:t": ["acme"]}}}));
    let p = Policies::load_appliance(bundle, Limits::default()).unwrap();
    assert!(
        p.evaluate(
            "mc.isolation",
            &isolation_input(json!("globex"), &["auditor"], "read", "acme")
        )
        .unwrap()
        .allow
    );
    assert!(
        !p.evaluate(
            "mc.isolation",
            &isolation_input(json!("globex"), &["auditor"], "run", "acme")
        )
        .unwrap()
        .allow
    );
    assert!(
        !p.evaluate(
            "mc.isolation",
            &isolation_input(json!("globex"), &["auditor"], "read", "initech")
        )
        .unwrap()
        .allow
    );
    assert_ne!(p.digest(), shipped().digest());
}

#[test]
fn the_sprint_plan_v0_policy_loads_and_agrees_with_its_v1_form() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/policy/sprint-plan");
    let load = |name: &str| {
        let mut b = PolicyBundle::embedded();
        b.files.clear();
        b.files.insert(
            name.into(),
            std::fs::read_to_string(dir.join(name)).unwrap(),
        );
        Policies::load(b, Limits::default()).unwrap()
    };
    let v0 = load("isolation.rego");
    let v1 = load("isolation.v1.rego");
    assert_eq!(v0.versions()[0].1, RegoVersion::V0);
    assert_eq!(v1.versions()[0].1, RegoVersion::V1);
    for (a, s) in [
        ("acme", "acme"),
        ("acme", "globex"),
        ("globex", "acme"),
        ("", ""),
    ] {
        let input = isolation_input(json!(a), &["viewer"], "read", s);
        assert_eq!(
            v0.evaluate("mc.isolation", &input).unwrap(),
            v1.evaluate("mc.isolation", &input).unwrap()
        );
        // The shipped policy agrees on the tenant boundary.
        assert_eq!(
            v0.evaluate("mc.isolation", &input).unwrap().allow,
            shipped().evaluate("mc.isolation", &input).unwrap().allow,
            "{a} -> {s}"
        );
    }
}

#[test]
fn admission_and_residency_give_their_reasons() {
    let p = shipped();
    let input = json!({
        "actor": {"subject": "s", "tenant": "acme", "roles": ["viewer"]},
        "tenant": {"id": "acme", "allowed_regions": ["eu-west"]},
        "execution": {"id": "ex_1", "canary": true},
        "manifest": {"name": "n", "version": "1.0.0", "region": "us-east", "digest": "sha256:00",
                     "tasks": [
                        {"id": "a", "uses": "builtin/exec"},
                        {"id": "b", "uses": "builtin/http", "url_host": "evil.example", "url_port": 443},
                        {"id": "c", "uses": "builtin/http", "url_host": "api.internal", "url_port": 8443},
                        {"id": "d", "uses": "builtin/artifact", "location": "nowhere"},
                        {"id": "e", "uses": "builtin/artifact", "location": "eu-bucket"},
                     ]},
        "appliance": {"exec_enabled": false,
                      "http_allowed": [{"host": "api.internal", "port": null}],
                      "locations": {"eu-bucket": "eu-west"}},
    });
    let a = p.evaluate("mc.admission", &input).unwrap();
    let codes: Vec<&str> = a.reasons.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "action_disabled",
            "canary_not_allowed",
            "host_not_allowed",
            "unknown_location"
        ]
    );
    let r = p.evaluate("mc.residency", &input).unwrap();
    let codes: Vec<&str> = r.reasons.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, ["location_outside_region", "region_not_allowed"]);
}

#[test]
fn hostile_policies_are_stopped_by_limits() {
    let mut b = PolicyBundle::embedded();
    b.files.insert(
        "spin.rego".into(),
        // Long-running but small: the memory limit is process-wide, so this test must not
        // allocate much while other tests evaluate (the memory limit has its own process test).
        "package spin\n\nallow if {\n\tsome i in numbers.range(1, 100000)\n\tsome j in numbers.range(1, 100000)\n\ti + j < 0\n}\n".into(),
    );
    let p = Policies::load(
        b,
        Limits {
            time: Duration::from_millis(50),
            ..Limits::default()
        },
    )
    .unwrap();
    let started = std::time::Instant::now();
    let err = p.evaluate("spin", &json!({})).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, PolicyError::Limit { .. }), "{err}");
}

#[test]
fn bad_policies_are_refused_with_file_and_line() {
    let mut b = PolicyBundle::embedded();
    b.files.insert(
        "broken.rego".into(),
        "package broken\n\nallow if {\n".into(),
    );
    let err = Policies::load(b, Limits::default()).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Parse { file, .. } if file == "broken.rego"),
        "{err}"
    );
    let mut b = PolicyBundle::embedded();
    b.files.remove("residency.rego");
    assert!(
        matches!(Policies::load_appliance(b, Limits::default()), Err(PolicyError::MissingPackage(p)) if p == "mc.residency")
    );
}

#[test]
fn explanations_name_the_rules_that_fired() {
    let p = shipped();
    let input = isolation_input(json!("acme"), &["viewer"], "read", "globex");
    let e = p.explain("mc.isolation", &input).unwrap();
    assert!(!e.allow);
    let fired: Vec<&str> = e
        .rules
        .iter()
        .filter(|r| r.outcome == "fired")
        .map(|r| r.rule.as_str())
        .collect();
    assert!(
        fired.contains(&"deny") && !fired.contains(&"allow"),
        "{fired:?}"
    );
    assert!(
        fired.contains(&"role_grants") && !fired.contains(&"cross_tenant_read_granted"),
        "{fired:?}"
    );
    let deny = e
        .rules
        .iter()
        .find(|r| r.rule == "deny" && r.outcome == "fired")
        .unwrap();
    assert!(deny.source.contains("cross_tenant_access"));
    assert!(!deny.evaluated.is_empty());
    assert_eq!(
        e,
        p.explain("mc.isolation", &input).unwrap(),
        "explanations are deterministic"
    );
    let ok = p
        .explain(
            "mc.isolation",
            &isolation_input(json!("acme"), &["viewer"], "read", "acme"),
        )
        .unwrap();
    assert!(
        ok.rules
            .iter()
            .any(|r| r.rule == "allow" && r.outcome == "fired")
    );
    assert!(
        ok.rules
            .iter()
            .any(|r| r.rule == "allow" && r.outcome == "default")
    );
}

#[test]
fn shipped_policy_tests_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy/rego");
    let r = testing::run(&dir).unwrap();
    let failures: Vec<_> = r
        .tests
        .iter()
        .filter(|t| t.outcome != testing::TestOutcome::Pass)
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(r.passed >= 15, "{} tests", r.passed);
}
