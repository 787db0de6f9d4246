//! Differential test against the real Go OPA engine (`tests/interop/opa`): generated inputs
//! over every shipped policy give identical results in regorus (the VM the appliance decides
//! with, and the interpreter's whole package document) and in OPA. The generator is seeded,
//! so a failure reproduces; it covers every branch the policies have (members, other
//! tenants, appliance admins, auditors with and without grants, every role and action, the
//! shared catalog, tasks
//! of every kind, allow-listed and foreign hosts and ports, known and unknown locations,
//! regions in and out of the allowed set) plus values the policies never expect.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use maestro::policy::{Limits, Policies, PolicyBundle};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use serde_json::{Value, json};

/// Inputs per shipped policy.
const PER_POLICY: usize = 1200;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn opa_python() -> PathBuf {
    let p = root().join("tests/interop/opa/.venv/bin/python");
    assert!(
        p.exists(),
        "the OPA harness is not installed: run ./scripts/test, or: python3 -m venv tests/interop/opa/.venv && tests/interop/opa/.venv/bin/pip install --ignore-requires-python -r tests/interop/opa/requirements.txt"
    );
    p
}

/// The policy data both engines evaluate with.
fn data() -> Value {
    json!({"mc": {"cross_tenant_readers": {
        "token:globex-auditor": ["acme"],
        "token:a": ["globex", "initech"],
    }}})
}

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

fn subset(rng: &mut StdRng, xs: &[&str]) -> Vec<String> {
    xs.iter()
        .filter(|_| rng.random_bool(0.35))
        .map(|s| (*s).to_owned())
        .collect()
}

fn tenant(rng: &mut StdRng) -> Value {
    pick(
        rng,
        &[
            json!("acme"),
            json!("globex"),
            json!("initech"),
            json!(null),
            json!(""),
        ],
    )
    .clone()
}

fn roles(rng: &mut StdRng) -> Vec<String> {
    subset(
        rng,
        &["viewer", "operator", "auditor", "admin", "superuser", ""],
    )
}

fn actor(rng: &mut StdRng) -> Value {
    json!({
        "subject": pick(rng, &["token:a", "token:globex-auditor", "oidc:alice@acme", "token:\"q\""]),
        "tenant": tenant(rng),
        "roles": roles(rng),
    })
}

fn isolation(rng: &mut StdRng) -> Value {
    json!({
        "actor": actor(rng),
        "action": pick(rng, &["read", "run", "audit", "publish", "delete", ""]),
        "subject": {
            "tenant": tenant(rng),
            "kind": pick(rng, &["execution", "executions", "receipt", "decision", "audit", "catalog"]),
            "id": pick(rng, &[json!("ex_01hx"), json!(null), json!("../../etc/passwd")]),
        },
        "route": pick(rng, &["GET /api/v1/executions/{id}", "POST /api/v1/executions", "GET /api/v1/audit", "POST /api/v1/catalog"]),
    })
}

fn regions(rng: &mut StdRng) -> Vec<String> {
    subset(rng, &["eu-west", "us-east", "ap-south", "EU-WEST"])
}

fn locations(rng: &mut StdRng) -> Value {
    let mut m = serde_json::Map::new();
    for (name, region) in [
        ("eu-bucket", "eu-west"),
        ("us-bucket", "us-east"),
        ("ap-bucket", "ap-south"),
    ] {
        if rng.random_bool(0.7) {
            m.insert(name.into(), json!(region));
        }
    }
    Value::Object(m)
}

fn tasks(rng: &mut StdRng) -> Vec<Value> {
    (0..rng.random_range(0..5))
        .map(|i| {
            let uses = *pick(
                rng,
                &[
                    "builtin/exec",
                    "builtin/http",
                    "builtin/artifact",
                    "builtin/echo",
                    "builtin/sleep",
                ],
            );
            let mut t = json!({"id": format!("t{i}"), "uses": uses});
            if rng.random_bool(0.6) {
                t["location"] = json!(pick(
                    rng,
                    &["eu-bucket", "us-bucket", "ap-bucket", "nowhere", ""]
                ));
            }
            if rng.random_bool(0.6) {
                t["url_host"] = json!(pick(rng, &["api.example.com", "127.0.0.1", "evil.test"]));
                t["url_port"] = pick(rng, &[json!(443), json!(8443), json!(80)]).clone();
            }
            t
        })
        .collect()
}

fn admission(rng: &mut StdRng) -> Value {
    let allowed: Vec<Value> = (0..rng.random_range(0..3))
        .map(|_| {
            json!({
                "host": pick(rng, &["api.example.com", "127.0.0.1", "other.test"]),
                "port": pick(rng, &[json!(null), json!(443), json!(8443)]),
            })
        })
        .collect();
    json!({
        "actor": actor(rng),
        "tenant": {"id": tenant(rng), "allowed_regions": regions(rng)},
        "execution": {"id": "ex_01hx", "canary": rng.random_bool(0.3)},
        "manifest": {
            "name": "wf",
            "version": "1.0.0",
            "region": pick(rng, &["eu-west", "us-east", "ap-south", ""]),
            "digest": "sha256:00",
            "tasks": tasks(rng),
        },
        "appliance": {
            "exec_enabled": rng.random_bool(0.5),
            "http_allowed": allowed,
            "locations": locations(rng),
        },
    })
}

fn residency(rng: &mut StdRng) -> Value {
    json!({
        "tenant": {"id": tenant(rng), "allowed_regions": regions(rng)},
        "manifest": {"region": pick(rng, &["eu-west", "us-east", "ap-south", "", "EU-WEST"]), "tasks": tasks(rng)},
        "appliance": {"locations": locations(rng)},
    })
}

/// Sorts every array, at every depth, by the canonical text of its elements (what the OPA
/// harness does), so set order is not compared.
fn normalise(v: &Value) -> Value {
    match v {
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(normalise).collect();
            items.sort_by_key(|x| serde_json::to_string(x).unwrap());
            Value::Array(items)
        }
        Value::Object(o) => {
            let sorted: std::collections::BTreeMap<_, _> =
                o.iter().map(|(k, v)| (k.clone(), normalise(v))).collect();
            serde_json::to_value(sorted).unwrap()
        }
        other => other.clone(),
    }
}

/// The generated cases: (package, input).
pub fn cases(seed: u64) -> Vec<(&'static str, Value)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for _ in 0..PER_POLICY {
        out.push(("mc.isolation", isolation(&mut rng)));
        out.push(("mc.admission", admission(&mut rng)));
        out.push(("mc.residency", residency(&mut rng)));
    }
    out
}

/// Runs the OPA harness over `cases`; one result per case.
fn opa(cases: &[(&str, Value)], data_file: &Path) -> Vec<Value> {
    let mut child = Command::new(opa_python())
        .arg(root().join("tests/interop/opa/eval.py"))
        .arg("--policy-dir")
        .arg(root().join("policy/rego"))
        .arg("--data")
        .arg(data_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the OPA harness");
    let mut stdin = child.stdin.take().unwrap();
    for (package, input) in cases {
        writeln!(stdin, "{}", json!({"package": package, "input": input})).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "OPA harness failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn regorus_and_opa_decide_identically_on_generated_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let data_file = dir.path().join("data.json");
    std::fs::write(&data_file, data().to_string()).unwrap();
    let policies = Policies::load_appliance(
        PolicyBundle::embedded().with_data(&data()),
        Limits::default(),
    )
    .unwrap();
    let cases = cases(0x006d_636f_7061);
    let results = opa(&cases, &data_file);
    assert_eq!(results.len(), cases.len());
    let mut allowed = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    for ((package, input), theirs) in cases.iter().zip(&results) {
        let Some(doc) = theirs.get("document") else {
            panic!("OPA did not decide {package} for {input}: {theirs}");
        };
        let doc = normalise(doc);
        // The interpreter's whole package document (helper rules included).
        let interpreted = policies.evaluate_interpreted(package, input).unwrap();
        assert_eq!(
            normalise(&interpreted.document),
            doc,
            "{package}: package documents differ for input {input}"
        );
        // The VM's decision, as the appliance records it (allowed: `allow` and no `deny`).
        let vm = policies.evaluate(package, input).unwrap();
        assert_eq!(
            vm.document["allow"], doc["allow"],
            "{package}: allow differs for {input}"
        );
        let opa_allows = doc["allow"] == json!(true) && doc["deny"] == json!([]);
        assert_eq!(
            vm.allow, opa_allows,
            "{package}: verdict differs for {input}"
        );
        assert_eq!(
            normalise(&serde_json::to_value(&vm.reasons).unwrap()),
            doc["deny"],
            "{package}: deny differs for {input}"
        );
        let e = allowed.entry(package).or_default();
        if vm.allow {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    // The generator reaches both outcomes of every policy, often.
    for (package, (yes, no)) in &allowed {
        assert!(
            *yes >= 50 && *no >= 50,
            "{package}: {yes} allowed, {no} denied"
        );
    }
}

#[test]
fn policy_cli_evaluates_tests_and_explains_offline() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    // `policy test` runs the shipped tests like `opa test`, and fails on a failing test.
    let (code, out, err) = crate::support::cli(
        &[
            "policy",
            "test",
            root().join("policy/rego").to_str().unwrap(),
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("data.mc.isolation_test.test_other_tenants_are_denied: PASS"));
    assert!(out.contains(" 0 failed"), "{out}");
    let bad = cwd.join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("p.rego"), "package p\n\nallow if input.x == 1\n").unwrap();
    std::fs::write(
        bad.join("p_test.rego"),
        "package p_test\n\nimport data.p\n\ntest_wrong if p.allow with input as {\"x\": 2}\n",
    )
    .unwrap();
    let (code, out, _) = crate::support::cli(&["policy", "test", bad.to_str().unwrap()], &[], cwd);
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("test_wrong: FAIL"), "{out}");
    // `policy eval` and `policy explain` on an input file.
    let input = cwd.join("input.json");
    let (_, case) = cases(7)
        .into_iter()
        .find(|(p, _)| *p == "mc.isolation")
        .unwrap();
    std::fs::write(&input, case.to_string()).unwrap();
    let (code, out, err) = crate::support::cli(
        &[
            "policy",
            "eval",
            "--input",
            input.to_str().unwrap(),
            "mc.isolation",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let expected = Policies::load_appliance(PolicyBundle::embedded(), Limits::default())
        .unwrap()
        .evaluate_interpreted("mc.isolation", &case)
        .unwrap();
    assert_eq!(doc, expected.document);
    let (code, out, err) = crate::support::cli(
        &[
            "--output",
            "json",
            "policy",
            "explain",
            "mc.isolation",
            "--input",
            input.to_str().unwrap(),
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 0, "{err}");
    let e: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["allow"], json!(expected.allow));
    assert!(e["rules"].as_array().unwrap().len() >= 5);
    // Bad input: a clear usage error naming the file.
    std::fs::write(&input, "{not json").unwrap();
    let (code, _, err) = crate::support::cli(
        &[
            "policy",
            "eval",
            "--input",
            input.to_str().unwrap(),
            "mc.isolation",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 2);
    assert!(err.contains("input.json: not JSON"), "{err}");
}

#[test]
fn audit_and_decision_cli_against_a_server() {
    use crate::support::{Server, cli, config_text, free_port};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (text, tokens) = config_text(&dir.path().join("data"), &format!("127.0.0.1:{port}"), "");
    let config = dir.path().join("maestro.toml");
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&config, port);
    // A viewer's submission is refused by the guard and recorded.
    let c = reqwest::blocking::Client::new();
    let r = c
        .post(format!("{}/api/v1/executions", server.url))
        .bearer_auth(&tokens.acme_viewer)
        .json(&json!({"workflow": "hello"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let env = |token: &str| {
        vec![
            ("MAESTRO_URL", server.url.clone()),
            ("MAESTRO_TOKEN", token.to_owned()),
        ]
    };
    let run = |args: &[&str], token: &str| {
        let e = env(token);
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        cli(args, &e, dir.path())
    };
    let (code, out, err) = run(&["--output", "json", "audit", "list"], &tokens.acme_auditor);
    assert_eq!(code, 0, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    let event = &listed["items"][0];
    assert_eq!(event["kind"], "access_denied");
    let decision = event["decision"].as_str().unwrap();
    let (code, out, err) = run(
        &["policy", "explain", "--decision", decision],
        &tokens.acme_auditor,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replay matches the recorded outcome"), "{out}");
    assert!(out.contains("role_missing"), "{out}");
    // The whole chain verifies with an appliance-wide token; a tenant's token cannot read it.
    let (code, out, err) = run(&["audit", "verify"], &tokens.admin);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("audit log verified: 2 events"), "{out}");
    let (code, _, _) = run(&["audit", "list"], &tokens.acme_operator);
    assert_eq!(code, 9);
    drop(server);
    // Offline, on the data directory: the operator's refused read is the third event.
    let (code, out, err) = cli(
        &["--config", config.to_str().unwrap(), "audit", "verify"],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 events"), "{out}");
}
