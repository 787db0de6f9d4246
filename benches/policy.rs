//! Policy evaluation cost: one decision of each shipped package on a typical input, through
//! the appliance's evaluator (the regorus VM) and on the interpreter. `cargo bench --bench policy`.

use criterion::{Criterion, criterion_group, criterion_main};
use maestro::policy::{Limits, Policies, PolicyBundle};
use serde_json::json;

fn inputs() -> Vec<(&'static str, serde_json::Value)> {
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

fn evaluate(c: &mut Criterion) {
    let p = Policies::load_appliance(PolicyBundle::embedded(), Limits::default()).unwrap();
    for (package, input) in inputs() {
        let vm = p.evaluate(package, &input).unwrap();
        let interpreted = p.evaluate_interpreted(package, &input).unwrap();
        assert_eq!(
            (vm.allow, &vm.reasons),
            (interpreted.allow, &interpreted.reasons),
            "{package}"
        );
        c.bench_function(&format!("vm/{package}"), |b| {
            b.iter(|| p.evaluate(package, &input).unwrap())
        });
        c.bench_function(&format!("interpreter/{package}"), |b| {
            b.iter(|| p.evaluate_interpreted(package, &input).unwrap())
        });
    }
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
