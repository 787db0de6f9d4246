//! Policy decisions per second and decision latency (p50, p99), in process, for each shipped
//! package: through the appliance's evaluator (the regorus VM), on the regorus interpreter,
//! and on the Go OPA engine (the `tests/interop/opa` harness, when installed) with the same
//! policies and inputs, in one run.
//!
//! `cargo bench --bench policy [-- --decisions 20000]`
//!
//! Inputs: a typical decision of each package plus the first 200 generated inputs of the
//! differential test's kind (members, other tenants, admins, auditors, tasks of every kind),
//! evaluated round-robin. Each decision is timed alone. The OPA figures include the bindings'
//! Python-to-Go call (JSON both ways), so they overstate OPA's own cost; its harness prints a
//! trivial-query baseline for that overhead.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use maestro::policy::{Limits, Policies, PolicyBundle};
use serde_json::{Value, json};

fn typical() -> Vec<(&'static str, Value)> {
    vec![
        (
            "mc.isolation",
            json!({"actor": {"subject": "token:acme-op", "tenant": "acme", "roles": ["operator"]},
                   "action": "read", "subject": {"tenant": "acme", "kind": "execution", "id": "ex_01"},
                   "route": "GET /api/v1/executions/{id}"}),
        ),
        (
            "mc.admission",
            json!({"actor": {"subject": "token:acme-op", "tenant": "acme", "roles": ["operator"]},
                   "tenant": {"id": "acme", "allowed_regions": ["eu-west"]},
                   "execution": {"id": "ex_01", "canary": false},
                   "manifest": {"name": "hello", "version": "1.0.0", "region": "eu-west", "digest": "sha256:00",
                                "tasks": [{"id": "greet", "uses": "builtin/echo"}]},
                   "appliance": {"exec_enabled": false, "http_allowed": [], "locations": {"eu-bucket": "eu-west"}}}),
        ),
        (
            "mc.residency",
            json!({"tenant": {"id": "acme", "allowed_regions": ["eu-west"]},
                   "manifest": {"region": "eu-west", "tasks": [{"id": "greet", "uses": "builtin/echo"}]},
                   "appliance": {"locations": {"eu-bucket": "eu-west"}}}),
        ),
    ]
}

/// Varied inputs: the typical ones with tenants, roles, actions and tasks changed.
fn varied() -> Vec<(&'static str, Value)> {
    let mut out = typical();
    let tenants = ["acme", "globex", "initech"];
    let roles = [
        vec!["viewer"],
        vec!["operator"],
        vec!["auditor"],
        vec!["admin"],
        vec![],
    ];
    let uses = [
        "builtin/echo",
        "builtin/http",
        "builtin/exec",
        "builtin/artifact",
    ];
    for i in 0..200usize {
        let (package, mut input) = typical()[i % 3].clone();
        let actor = json!({"subject": "token:t", "tenant": tenants[i % 3], "roles": roles[i % 5]});
        match package {
            "mc.isolation" => {
                input["actor"] = actor;
                input["action"] = json!((["read", "run", "audit"][i % 3]));
                input["subject"]["tenant"] = json!(tenants[(i / 3) % 3]);
            }
            _ => {
                if package == "mc.admission" {
                    input["actor"] = actor;
                }
                let tasks: Vec<Value> = (0..(i % 5))
                    .map(|k| {
                        json!({"id": format!("t{k}"), "uses": uses[(i + k) % 4],
                                    "location": (["eu-bucket", "us-bucket"][k % 2]),
                                    "url_host": "api.example.com", "url_port": 443})
                    })
                    .collect();
                input["manifest"]["tasks"] = json!(tasks);
                input["manifest"]["region"] = json!((["eu-west", "us-east"][i % 2]));
            }
        }
        out.push((package, input));
    }
    out
}

struct Figures {
    decisions: usize,
    per_second: f64,
    p50_us: f64,
    p99_us: f64,
}

fn measure(n: usize, inputs: &[&Value], mut decide: impl FnMut(&Value)) -> Figures {
    for input in inputs {
        decide(input);
    }
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        decide(inputs[i % inputs.len()]);
        lat.push(t.elapsed().as_nanos() as f64 / 1000.0);
    }
    let total = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    Figures {
        decisions: n,
        per_second: n as f64 / total,
        p50_us: lat[n / 2],
        p99_us: lat[n * 99 / 100],
    }
}

fn row(engine: &str, package: &str, f: &Figures) {
    println!(
        "| {engine:<19} | {package:<12} | {:>9} | {:>12.0} | {:>8.1} | {:>8.1} |",
        f.decisions, f.per_second, f.p50_us, f.p99_us
    );
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let n: usize = argv
        .iter()
        .position(|a| a == "--decisions")
        .and_then(|i| argv.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let p = Policies::load_appliance(PolicyBundle::embedded(), Limits::default()).unwrap();
    let cases = varied();
    println!(
        "| engine              | package      | decisions | decisions/s  | p50 µs   | p99 µs   |"
    );
    println!(
        "|---------------------|--------------|-----------|--------------|----------|----------|"
    );
    for package in ["mc.isolation", "mc.admission", "mc.residency"] {
        let inputs: Vec<&Value> = cases
            .iter()
            .filter(|(p, _)| *p == package)
            .map(|(_, i)| i)
            .collect();
        for input in &inputs {
            let vm = p.evaluate(package, input).unwrap();
            let it = p.evaluate_interpreted(package, input).unwrap();
            assert_eq!(
                (vm.allow, &vm.reasons),
                (it.allow, &it.reasons),
                "{package}"
            );
        }
        let f = measure(n, &inputs, |i| {
            p.evaluate(package, i).unwrap();
        });
        row("regorus VM", package, &f);
        let f = measure(n, &inputs, |i| {
            p.evaluate_interpreted(package, i).unwrap();
        });
        row("regorus interpreter", package, &f);
    }
    opa(&cases, n);
}

/// The Go engine's figures on the same inputs, through the OPA harness.
fn opa(cases: &[(&str, Value)], n: usize) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("tests/interop/opa/.venv/bin/python");
    if !python.exists() {
        println!("(OPA harness not installed: ./scripts/test installs it)");
        return;
    }
    let mut child = Command::new(python)
        .arg(root.join("tests/interop/opa/eval.py"))
        .arg("--policy-dir")
        .arg(root.join("policy/rego"))
        .args(["--bench", &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the OPA harness");
    let mut stdin = child.stdin.take().unwrap();
    for (package, input) in cases {
        writeln!(stdin, "{}", json!({"package": package, "input": input})).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let f = Figures {
            decisions: v["decisions"].as_u64().unwrap_or(0) as usize,
            per_second: v["decisions_per_second"].as_f64().unwrap_or(0.0),
            p50_us: v["p50_us"].as_f64().unwrap_or(0.0),
            p99_us: v["p99_us"].as_f64().unwrap_or(0.0),
        };
        row("OPA (Go, via cgo)", v["package"].as_str().unwrap_or(""), &f);
    }
}
