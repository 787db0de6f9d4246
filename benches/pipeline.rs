//! Engine throughput, in process: durable, signed, logged single-task executions per second
//! (submit → group-committed acceptance → run → sealed receipt in the transparency log),
//! plus the cost of the pieces (manifest validation, receipt signing).
//!
//! `cargo bench --bench pipeline`. Each measured iteration runs 5,000 executions to their
//! receipts as a steady stream; the parameter is how many are in flight at once (submitted,
//! not yet sealed), i.e. the number of concurrent clients.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use maestro::attest::keys::{Algorithm, SigningKey};
use maestro::config::{Config, TenantConfig};
use maestro::domain::actor::{Access, Actor, Role, TenantScope};
use maestro::domain::ids::TenantId;
use maestro::domain::validate;
use maestro::engine::{Engine, EngineConfig, Signing};
use maestro::policy::{Limits, Policies, PolicyBundle};
use maestro::store::Store;
use maestro::telemetry::Metrics;

/// A single-task manifest, as the HTTP API receives it (JSON).
const HELLO: &str = r#"{"name":"hello","version":"1.0.0","region":"eu-west","tasks":[{"id":"greet","uses":"builtin/echo","with":{"message":"hello"}}]}"#;

fn engine(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    alg: Algorithm,
    policies: Arc<Policies>,
) -> Engine {
    let mut c = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.limits.runners = 256;
    c.limits.global_rate = 10_000_000;
    c.limits.global_burst = 10_000_000;
    c.tenants.insert(
        "bench".into(),
        TenantConfig {
            rate: Some(10_000_000),
            burst: Some(10_000_000),
            max_queued: Some(1_000_000),
            ..Default::default()
        },
    );
    let cfg = EngineConfig::from_config(&c).unwrap();
    rt.block_on(async {
        let store = Arc::new(Store::open(dir).unwrap());
        let signing = Signing {
            appliance: Arc::new(SigningKey::generate(alg).unwrap()),
            tenant_keys: Default::default(),
            origin: "bench/log".into(),
            version: "bench".into(),
        };
        Engine::start(store, cfg, signing, policies, Arc::new(Metrics::new()))
            .await
            .unwrap()
            .0
    })
}

/// Runs `n` executions to their receipts, keeping at most `in_flight` submitted and not yet
/// sealed (a steady stream rather than one burst).
async fn run_many(engine: &Engine, n: usize, in_flight: usize) {
    let tenant = TenantId::new("bench").unwrap();
    let actor = Actor {
        subject: "bench".into(),
        tenant: Some(tenant.clone()),
        roles: vec![Role::Operator],
    };
    let scope = TenantScope::system(tenant.clone(), Access::Run);
    let slots = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let engine = engine.clone();
        let actor = actor.clone();
        let scope = scope.clone();
        let permit = slots.clone().acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let manifest = validate::load(HELLO, &engine.validation_context()).unwrap();
            let e = engine
                .submit(&scope, &actor, manifest, false)
                .await
                .unwrap();
            let done = engine
                .wait_final(&scope, &e.id, Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap();
            assert!(done.receipt.is_some());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("pipeline");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let shipped =
        Arc::new(Policies::load_appliance(PolicyBundle::embedded(), Limits::default()).unwrap());
    // The same pipeline with policies that decide nothing, to price policy evaluation.
    let mut trivial = PolicyBundle::embedded();
    trivial.files.clear();
    for package in ["isolation", "admission", "residency"] {
        trivial.files.insert(
            format!("{package}.rego"),
            format!("package mc.{package}\n\nallow := true\n\ndeny := set()\n"),
        );
    }
    let trivial = Arc::new(Policies::load_appliance(trivial, Limits::default()).unwrap());
    for (label, alg, policies, in_flights) in [
        (
            "ed25519",
            Algorithm::Ed25519,
            &shipped,
            &[256usize, 1024][..],
        ),
        (
            "ecdsa-p256",
            Algorithm::EcdsaP256,
            &shipped,
            &[256, 1024][..],
        ),
        (
            "ed25519-no-policy",
            Algorithm::Ed25519,
            &trivial,
            &[256][..],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(&rt, dir.path(), alg, policies.clone());
        const N: usize = 5000;
        for &in_flight in in_flights {
            group.throughput(Throughput::Elements(N as u64));
            group.bench_with_input(BenchmarkId::new(label, in_flight), &in_flight, |b, &k| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        rt.block_on(run_many(&engine, N, k));
                    }
                    start.elapsed()
                })
            });
        }
        rt.block_on(engine.shutdown(Duration::from_secs(10)));
    }
    group.finish();
}

fn pieces(c: &mut Criterion) {
    let ctx = validate::Context::default();
    c.bench_function("validate_hello_manifest", |b| {
        b.iter(|| validate::load(HELLO, &ctx).unwrap())
    });
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let payload = vec![b'x'; 1500];
    c.bench_function("dsse_sign_ed25519_1500b", |b| {
        b.iter(|| {
            maestro::attest::dsse::sign("application/vnd.in-toto+json", &payload, &key).unwrap()
        })
    });
}

criterion_group!(benches, pipeline, pieces);
criterion_main!(benches);
