//! Engine tests against a real store: submit to verified receipt, denial with receipt, rate
//! limits and queue bounds, recovery after a restart, fair dispatch under a flood.

use super::*;
use crate::attest::keys::{Algorithm, SigningKey};
use crate::attest::receipt::{self, Trust};
use crate::domain::actor::Role;

const HELLO: &str = "name: hello\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - {id: a, uses: builtin/echo, with: {message: hi}}\n";

fn cfg(dir: &std::path::Path, tenants: &[(&str, u32, u32)], runners: usize) -> EngineConfig {
    let mut c = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.limits.runners = runners;
    for (t, rate, burst) in tenants {
        c.tenants.insert(
            t.to_string(),
            crate::config::TenantConfig {
                rate: Some(*rate),
                burst: Some(*burst),
                allowed_regions: vec!["eu-west".into()],
                ..Default::default()
            },
        );
    }
    EngineConfig::from_config(&c).unwrap()
}

fn policies() -> Arc<Policies> {
    Arc::new(
        Policies::load_appliance(
            crate::policy::PolicyBundle::embedded(),
            crate::policy::Limits::default(),
        )
        .unwrap(),
    )
}

fn signing(key: Arc<SigningKey>) -> Signing {
    Signing {
        appliance: key,
        tenant_keys: HashMap::new(),
        origin: "maestro.test/log".into(),
        version: "test".into(),
    }
}

fn operator(t: &str) -> (Actor, TenantScope) {
    let actor = Actor {
        subject: format!("{t}-op"),
        tenant: Some(TenantId::new(t).unwrap()),
        roles: vec![Role::Operator],
    };
    let scope = TenantScope::system(TenantId::new(t).unwrap(), Access::Run);
    (actor, scope)
}

async fn start(dir: &std::path::Path, key: Arc<SigningKey>, c: EngineConfig) -> (Engine, Recovery) {
    let store = Arc::new(Store::open(dir).unwrap());
    Engine::start(store, c, signing(key), policies(), Arc::new(Metrics::new()))
        .await
        .unwrap()
}

fn manifest(e: &Engine, yaml: &str) -> ValidManifest {
    validate::load(yaml, &e.validation_context()).unwrap()
}

#[test]
fn allow_self_adds_the_appliance_address_to_the_http_allow_list() {
    let mut c = Config {
        listen: "0.0.0.0:7171".into(),
        ..Config::default()
    };
    c.actions.http.allowed_hosts = vec!["api.example.com".into()];
    assert_eq!(
        EngineConfig::from_config(&c).unwrap().http.allowed_hosts,
        ["api.example.com"]
    );
    c.actions.http.allow_self = true;
    let e = EngineConfig::from_config(&c).unwrap();
    assert_eq!(e.http.allowed_hosts, ["api.example.com", "127.0.0.1:7171"]);
    assert_eq!(e.appliance_url, "http://127.0.0.1:7171");
}

#[tokio::test]
async fn a_submission_ends_with_a_receipt_that_verifies_offline() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap());
    let (engine, _) = start(
        dir.path(),
        key.clone(),
        cfg(dir.path(), &[("acme", 100, 100)], 4),
    )
    .await;
    let (actor, scope) = operator("acme");
    let queued = engine
        .submit(&scope, &actor, manifest(&engine, HELLO), false)
        .await
        .unwrap();
    assert_eq!(queued.status, ExecutionStatus::Queued);
    let done = engine
        .wait_final(&scope, &queued.id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.tasks[0].outputs["message"], "hi");
    assert_eq!(done.decisions.len(), 2);
    assert_eq!(
        done.decisions
            .iter()
            .map(|d| d.policy.as_str())
            .collect::<Vec<_>>(),
        ["mc.admission", "mc.residency"]
    );
    let bundle = engine
        .evidence()
        .receipt_bundle(&scope, &done.id)
        .unwrap()
        .unwrap();
    let report = receipt::verify(
        &serde_json::to_vec(&bundle).unwrap(),
        &Trust {
            keys: vec![key.public().clone()],
            origin: Some("maestro.test/log".into()),
        },
    );
    assert!(report.valid, "{report:#?}");
    assert_eq!(report.digest, done.receipt.as_ref().map(|r| r.digest));
    // The decision is stored and readable by its id.
    let d = engine
        .store()
        .read()
        .unwrap()
        .decision(&scope, &done.decisions[0].id)
        .unwrap()
        .unwrap();
    assert!(d.allow);
    // Another tenant sees nothing.
    let (_, other) = operator("globex");
    assert!(
        engine
            .evidence()
            .receipt_bundle(&other, &done.id)
            .unwrap()
            .is_none()
    );
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_denied_submission_is_recorded_with_its_reasons_and_a_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap());
    let (engine, _) = start(
        dir.path(),
        key.clone(),
        cfg(dir.path(), &[("acme", 100, 100)], 4),
    )
    .await;
    let (actor, scope) = operator("acme");
    let e = engine
        .submit(
            &scope,
            &actor,
            manifest(&engine, &HELLO.replace("eu-west", "us-east")),
            false,
        )
        .await
        .unwrap();
    assert_eq!(e.status, ExecutionStatus::Denied);
    assert!(
        e.error
            .as_deref()
            .unwrap()
            .contains("may not run in region \"us-east\"")
    );
    assert!(e.decisions[0].allow, "mc.admission has nothing against it");
    assert_eq!(e.decisions[1].policy, "mc.residency");
    assert_eq!(e.decisions[1].reasons[0].code, "region_not_allowed");
    assert!(e.receipt.is_some());
    let bundle = engine
        .evidence()
        .receipt_bundle(&scope, &e.id)
        .unwrap()
        .unwrap();
    let report = receipt::verify(
        &serde_json::to_vec(&bundle).unwrap(),
        &Trust {
            keys: vec![key.public().clone()],
            origin: None,
        },
    );
    assert!(report.valid, "{report:#?}");
    assert_eq!(report.status.as_deref(), Some("denied"));
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn rate_limits_refuse_with_a_retry_time_and_spare_the_neighbour() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap());
    let (engine, _) = start(
        dir.path(),
        key,
        cfg(dir.path(), &[("acme", 1, 2), ("globex", 1, 2)], 4),
    )
    .await;
    let (a, sa) = operator("acme");
    let (g, sg) = operator("globex");
    for _ in 0..2 {
        engine
            .submit(&sa, &a, manifest(&engine, HELLO), false)
            .await
            .unwrap();
    }
    match engine
        .submit(&sa, &a, manifest(&engine, HELLO), false)
        .await
    {
        Err(SubmitError::RateLimited { scope, retry_after }) => {
            assert_eq!(scope, "tenant");
            assert!(retry_after > Duration::ZERO);
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    engine
        .submit(&sg, &g, manifest(&engine, HELLO), false)
        .await
        .unwrap();
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_restart_resumes_queued_and_interrupts_running_executions() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap());
    let slow = "name: slow\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - {id: a, uses: builtin/sleep, with: {duration: 30s}}\n";
    let (running_id, queued_id) = {
        // One runner: the slow execution runs, the next one waits in the queue.
        let (engine, _) = start(
            dir.path(),
            key.clone(),
            cfg(dir.path(), &[("acme", 100, 100)], 1),
        )
        .await;
        let (actor, scope) = operator("acme");
        let running = engine
            .submit(&scope, &actor, manifest(&engine, slow), false)
            .await
            .unwrap();
        for _ in 0..100 {
            let e = engine
                .store()
                .read()
                .unwrap()
                .execution(&scope, &running.id)
                .unwrap()
                .unwrap();
            if e.status == ExecutionStatus::Running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let queued = engine
            .submit(&scope, &actor, manifest(&engine, HELLO), false)
            .await
            .unwrap();
        // Stop without waiting for the slow one: as if the process died.
        engine.shutdown(Duration::from_millis(10)).await;
        drop(engine);
        (running.id, queued.id)
    };
    let (engine, recovery) = start(
        dir.path(),
        key.clone(),
        cfg(dir.path(), &[("acme", 100, 100)], 1),
    )
    .await;
    assert_eq!(
        recovery,
        Recovery {
            resumed: 1,
            interrupted: 1
        }
    );
    let (_, scope) = operator("acme");
    let interrupted = engine
        .store()
        .read()
        .unwrap()
        .execution(&scope, &running_id)
        .unwrap()
        .unwrap();
    assert_eq!(interrupted.status, ExecutionStatus::Interrupted);
    assert!(
        interrupted
            .error
            .as_deref()
            .unwrap()
            .contains("was not resumed")
    );
    let resumed = engine
        .wait_final(&scope, &queued_id, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resumed.status, ExecutionStatus::Succeeded);
    for id in [&running_id, &queued_id] {
        let bundle = engine
            .evidence()
            .receipt_bundle(&scope, id)
            .unwrap()
            .unwrap();
        let report = receipt::verify(
            &serde_json::to_vec(&bundle).unwrap(),
            &Trust {
                keys: vec![key.public().clone()],
                origin: None,
            },
        );
        assert!(report.valid, "{report:#?}");
    }
    assert!(engine.store().read().unwrap().active().unwrap().is_empty());
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn receipts_of_a_tenant_form_a_chain() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap());
    let (engine, _) = start(
        dir.path(),
        key.clone(),
        cfg(dir.path(), &[("acme", 1000, 1000)], 8),
    )
    .await;
    let (actor, scope) = operator("acme");
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(
            engine
                .submit(&scope, &actor, manifest(&engine, HELLO), false)
                .await
                .unwrap()
                .id,
        );
    }
    let mut sealed = Vec::new();
    for id in &ids {
        sealed.push(
            engine
                .wait_final(&scope, id, Duration::from_secs(10))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    sealed.sort_by_key(|e| e.receipt.as_ref().unwrap().log_index);
    let mut previous = None;
    for (i, e) in sealed.iter().enumerate() {
        let bundle = engine
            .evidence()
            .receipt_bundle(&scope, &e.id)
            .unwrap()
            .unwrap();
        let payload = bundle.dsse_envelope.payload_bytes().unwrap();
        let s: crate::domain::receipt::Statement = serde_json::from_slice(&payload).unwrap();
        assert_eq!(s.predicate.sequence, i as u64 + 1);
        assert_eq!(s.predicate.previous_receipt, previous);
        previous = Some(crate::domain::ids::Digest::of(&payload));
    }
    let cp = engine.evidence().latest_checkpoint().unwrap().unwrap();
    assert_eq!(cp.size, 20);
    let proof = engine.evidence().consistency_proof(5, 20).unwrap();
    assert_eq!(proof.to_root, cp.root_hash);
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn under_a_flood_the_quiet_tenant_is_dispatched_fairly() {
    // One runner, held by a long gate execution while tenant a queues 40 executions and
    // tenant b queues 4 after them. Once the gate ends, dispatch alternates: b's four run
    // among the first eight, not after a's backlog.
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap());
    let (engine, _) = start(
        dir.path(),
        key,
        cfg(
            dir.path(),
            &[("a", 1000, 1000), ("b", 1000, 1000), ("g", 10, 10)],
            1,
        ),
    )
    .await;
    let quick = "name: q\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - {id: a, uses: builtin/echo, with: {message: x}}\n";
    let gate = "name: gate\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - {id: a, uses: builtin/sleep, with: {duration: 3s}}\n";
    let (ga, sg) = operator("g");
    let (aa, sa) = operator("a");
    let (ba, sb) = operator("b");
    let gate_id = engine
        .submit(&sg, &ga, manifest(&engine, gate), false)
        .await
        .unwrap()
        .id;
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push((
            sa.clone(),
            engine
                .submit(&sa, &aa, manifest(&engine, quick), false)
                .await
                .unwrap()
                .id,
        ));
    }
    for _ in 0..4 {
        ids.push((
            sb.clone(),
            engine
                .submit(&sb, &ba, manifest(&engine, quick), false)
                .await
                .unwrap()
                .id,
        ));
    }
    let gate_state = engine
        .store()
        .read()
        .unwrap()
        .execution(&sg, &gate_id)
        .unwrap()
        .unwrap();
    assert_eq!(
        gate_state.status,
        ExecutionStatus::Running,
        "the gate ended before the queues were filled; the machine is too slow for this test"
    );
    let mut done = Vec::new();
    for (scope, id) in &ids {
        let e = engine
            .wait_final(scope, id, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        done.push((e.started_at.unwrap(), e.tenant.to_string()));
    }
    done.sort();
    let first_eight: Vec<&str> = done.iter().take(8).map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        first_eight.iter().filter(|t| **t == "b").count(),
        4,
        "{first_eight:?}"
    );
    engine.shutdown(Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_caller_that_goes_away_leaves_nothing_stuck_in_the_queue() {
    // A submission dropped mid-way (a client disconnecting) still runs to its receipt once
    // it was recorded: nothing stays queued until the next restart.
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate(Algorithm::Ed25519).unwrap());
    let (engine, _) = start(dir.path(), key, cfg(dir.path(), &[("acme", 1000, 1000)], 4)).await;
    let (actor, scope) = operator("acme");
    for _ in 0..20 {
        let abandoned = engine.submit(&scope, &actor, manifest(&engine, HELLO), false);
        let _ = tokio::time::timeout(Duration::from_micros(1), abandoned).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = engine.store().read().unwrap();
        let page = r
            .list_executions(
                &scope,
                &crate::store::ListQuery {
                    limit: 100,
                    ..Default::default()
                },
            )
            .unwrap();
        let pending = page.items.iter().filter(|e| !e.status.is_final()).count();
        if !page.items.is_empty() && pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} of {} executions stay pending",
            page.items.len()
        );
        drop(r);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.shutdown(Duration::from_secs(5)).await;
}
