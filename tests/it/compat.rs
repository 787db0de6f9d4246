//! Data directories written by earlier versions (`fixtures/store/v<N>/`) must open, keep
//! every receipt verifiable, keep the log consistent, and keep working: a new execution
//! extends the same log and tenant chain. When the schema version changes, the old
//! fixtures stay and a migration makes them pass.
//!
//! A fixture is created once, for the current schema version, with
//! `MAESTRO_REGEN_STORE=1 cargo test --test it compat` (only if it does not exist yet).

use std::path::{Path, PathBuf};
use std::time::Duration;

use maestro::app::{self, App, demo};
use maestro::attest::keys::PublicKey;
use maestro::attest::receipt::{self, Trust};
use maestro::config::Overrides;
use maestro::domain::actor::Access;
use maestro::domain::ids::TenantId;
use maestro::store::{ListQuery, SCHEMA_VERSION};

fn fixture(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/store/v{version}"))
}

async fn create_fixture(dir: &Path) {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let overrides = Overrides {
        data_dir: Some(data.clone()),
        demo: true,
        ..Overrides::default()
    };
    let resolved = app::resolve_config(None, &Default::default(), &overrides).unwrap();
    let app = App::start(resolved.config).await.unwrap();
    demo::seed_executions(&app).await.unwrap();
    app.engine.shutdown(Duration::from_secs(10)).await;
    drop(app);
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    let db = std::fs::read(data.join("maestro.redb")).unwrap();
    std::fs::write(
        dir.join("maestro.redb.zst"),
        zstd::encode_all(&db[..], 19).unwrap(),
    )
    .unwrap();
    std::fs::copy(data.join(demo::FILE), dir.join(demo::FILE)).unwrap();
    std::fs::copy(
        data.join("keys/appliance.pem"),
        dir.join("keys/appliance.pem"),
    )
    .unwrap();
}

/// Unpacks a fixture into a fresh data directory.
fn unpack(from: &Path, data: &Path) {
    std::fs::create_dir_all(data.join("keys")).unwrap();
    let db = zstd::decode_all(&std::fs::read(from.join("maestro.redb.zst")).unwrap()[..]).unwrap();
    std::fs::write(data.join("maestro.redb"), db).unwrap();
    std::fs::copy(from.join(demo::FILE), data.join(demo::FILE)).unwrap();
    let key = data.join("keys/appliance.pem");
    std::fs::copy(from.join("keys/appliance.pem"), &key).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[tokio::test]
async fn older_data_directories_open_verify_and_keep_working() {
    let current = fixture(SCHEMA_VERSION);
    if !current.exists() && std::env::var_os("MAESTRO_REGEN_STORE").is_some() {
        create_fixture(&current).await;
    }
    let mut checked = 0;
    for version in 1..=SCHEMA_VERSION {
        let from = fixture(version);
        assert!(from.exists(), "fixtures/store/v{version} is missing");
        let work = tempfile::tempdir().unwrap();
        let data = work.path().join("data");
        unpack(&from, &data);
        let overrides = Overrides {
            data_dir: Some(data.clone()),
            ..Overrides::default()
        };
        let config = app::resolve_config(None, &Default::default(), &overrides)
            .unwrap()
            .config;
        let app = App::start(config)
            .await
            .unwrap_or_else(|e| panic!("v{version} does not open: {e}"));
        let key = PublicKey::from_pem(app.engine.signing().appliance.public().pem()).unwrap();
        let trust = Trust {
            keys: vec![key],
            origin: Some(app.engine.signing().origin.clone()),
        };
        let evidence = app.engine.evidence();
        let before = evidence
            .latest_checkpoint()
            .unwrap()
            .expect("the fixture has a log");
        for tenant in ["acme", "globex"] {
            let scope = app
                .system_scope(&TenantId::new(tenant).unwrap(), Access::Read)
                .unwrap();
            let page = app
                .engine
                .store()
                .read()
                .unwrap()
                .list_executions(
                    &scope,
                    &ListQuery {
                        limit: 1000,
                        ..Default::default()
                    },
                )
                .unwrap();
            assert!(
                !page.items.is_empty(),
                "v{version}: {tenant} has no executions"
            );
            for e in page.items {
                let bundle = evidence
                    .receipt_bundle(&scope, &e.id)
                    .unwrap()
                    .expect("every execution is final with a receipt");
                let report = receipt::verify(&serde_json::to_vec(&bundle).unwrap(), &trust);
                assert!(report.valid, "v{version} {}: {report:#?}", e.id);
                checked += 1;
            }
        }
        // A new execution extends the old log and chain.
        let run_scope = app
            .system_scope(&TenantId::new("acme").unwrap(), Access::Run)
            .unwrap();
        let actor = maestro::domain::actor::Actor {
            subject: "compat".into(),
            tenant: Some(TenantId::new("acme").unwrap()),
            roles: vec![maestro::domain::actor::Role::Operator],
        };
        let text = maestro::app::workflows::get("hello").unwrap();
        let m = maestro::domain::validate::load(&text, &app.engine.validation_context()).unwrap();
        let e = app
            .engine
            .submit(&run_scope, &actor, m, false)
            .await
            .unwrap();
        let done = app
            .engine
            .wait_final(&run_scope, &e.id, Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.status.as_str(), "succeeded");
        let bundle = evidence
            .receipt_bundle(&run_scope, &done.id)
            .unwrap()
            .unwrap();
        assert!(receipt::verify(&serde_json::to_vec(&bundle).unwrap(), &trust).valid);
        let after = evidence.latest_checkpoint().unwrap().unwrap();
        assert_eq!(after.size, before.size + 1);
        let proof = evidence.consistency_proof(before.size, after.size).unwrap();
        let hashes: Vec<_> = proof
            .hashes
            .iter()
            .map(|h| maestro::tlog::parse_hex_hash(h).unwrap())
            .collect();
        maestro::tlog::verify_consistency(
            &hashes,
            before.size,
            maestro::tlog::parse_hex_hash(&before.root_hash).unwrap(),
            after.size,
            maestro::tlog::parse_hex_hash(&after.root_hash).unwrap(),
        )
        .unwrap();
        app.engine.shutdown(Duration::from_secs(5)).await;
    }
    assert!(checked >= 10, "only {checked} receipts checked");
}
