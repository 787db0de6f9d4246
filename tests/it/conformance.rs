//! Shared conformance vectors (`fixtures/conformance/`), the contract the Go and Python SDKs
//! must agree with: manifests with their expected problems (code and path) or digest, and
//! receipts with their expected verification result. Also checks the published JSON Schema
//! against the validator on the same vectors.
//!
//! `MAESTRO_REGEN=1 cargo test --test it conformance` rewrites the expected files, the schema
//! file and the receipt vectors; review the diff before committing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use maestro::attest::dsse;
use maestro::attest::keys::{Algorithm, PublicKey, SigningKey};
use maestro::attest::receipt::{
    self, KeyHint, LogEntry, MEDIA_TYPE, Outcome, ReceiptBundle, Trust,
};
use maestro::domain::execution::{Execution, ExecutionStatus, TaskStatus};
use maestro::domain::ids::{ExecutionId, TenantId};
use maestro::domain::manifest;
use maestro::domain::receipt::{ApplianceInfo, ChainHead, PAYLOAD_TYPE, statement};
use maestro::domain::validate::{self, Context};
use maestro::tlog::{self, MemoryLog};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn regen() -> bool {
    std::env::var_os("MAESTRO_REGEN").is_some()
}

fn manifest_cases() -> Vec<PathBuf> {
    let dir = root().join("fixtures/conformance/manifests");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            (name.ends_with(".yaml") || name.ends_with(".json"))
                && !name.ends_with(".expected.json")
        })
        .collect();
    v.sort();
    v
}

fn expected_path(case: &Path) -> PathBuf {
    let stem = case.file_stem().unwrap().to_string_lossy();
    case.with_file_name(format!("{stem}.expected.json"))
}

fn actual(text: &str) -> Value {
    match validate::load(text, &Context::default()) {
        Ok(v) => json!({"valid": true, "digest": v.digest}),
        Err(problems) => json!({
            "valid": false,
            "problems": problems.iter().map(|p| json!({"code": p.code, "path": p.path})).collect::<Vec<_>>(),
        }),
    }
}

fn problem_set(v: &Value) -> BTreeSet<(String, String)> {
    v["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["code"].as_str().unwrap().to_owned(),
                p["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn manifest_vectors_give_the_expected_problems() {
    let cases = manifest_cases();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for case in cases {
        let text = std::fs::read_to_string(&case).unwrap();
        let got = actual(&text);
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(got["valid"], name.starts_with("valid-"), "{name}: {got}");
        let path = expected_path(&case);
        if regen() {
            std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
            continue;
        }
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(&path)
                .unwrap_or_else(|_| panic!("{} is missing", path.display())),
        )
        .unwrap();
        assert_eq!(got["valid"], expected["valid"], "{name}");
        assert_eq!(got["digest"], expected["digest"], "{name}");
        assert_eq!(problem_set(&got), problem_set(&expected), "{name}");
    }
}

#[test]
fn the_published_schema_is_the_generated_one() {
    let path = root().join("docs/schema/manifest-v1.json");
    let generated = serde_json::to_string_pretty(&manifest::json_schema()).unwrap() + "\n";
    if regen() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed =
        std::fs::read_to_string(&path).expect("docs/schema/manifest-v1.json is committed");
    assert_eq!(committed, generated, "regenerate with MAESTRO_REGEN=1");
}

#[test]
fn the_schema_agrees_with_the_validator_on_structure() {
    let schema = manifest::json_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for case in manifest_cases() {
        let text = std::fs::read_to_string(&case).unwrap();
        let Ok(doc) = validate::parse_document(&text) else {
            continue;
        };
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let structural_codes = ["unknown_field", "missing_field", "invalid_type"];
        let got = actual(&text);
        // Action inputs (`with`) are checked against the action catalog, not the schema.
        let structural = problem_set(&got)
            .iter()
            .any(|(c, p)| structural_codes.contains(&c.as_str()) && !p.contains(".with"));
        let schema_ok = validator.is_valid(&doc);
        if got["valid"] == true {
            assert!(schema_ok, "{name} is valid but the schema rejects it");
        }
        if structural {
            assert!(
                !schema_ok,
                "{name} has structural problems but the schema accepts it"
            );
        }
    }
}

/// A statement for the receipt vectors.
fn vector_statement() -> Vec<u8> {
    let v = validate::load(
        &std::fs::read_to_string(root().join("fixtures/conformance/manifests/valid-minimal.yaml"))
            .unwrap(),
        &Context::default(),
    )
    .unwrap();
    let now = jiff::Timestamp::now();
    let mut e = Execution::new(
        ExecutionId::generate(),
        TenantId::new("acme").unwrap(),
        v.manifest,
        v.digest,
        false,
        "vectors".into(),
        now,
    );
    e.status = ExecutionStatus::Succeeded;
    e.started_at = Some(now);
    e.finished_at = Some(now);
    e.tasks[0].status = TaskStatus::Succeeded;
    statement(
        &e,
        &ChainHead::default(),
        ApplianceInfo {
            version: "vectors".into(),
            log_origin: "maestro.conformance/log".into(),
        },
    )
    .to_payload()
}

fn regenerate_receipts(dir: &Path) {
    use base64::Engine as _;
    std::fs::create_dir_all(dir).unwrap();
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let other = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let origin = "maestro.conformance/log";
    let payload = vector_statement();
    let mut log = MemoryLog::default();
    for i in 0..3 {
        log.append(format!("other leaf {i}").as_bytes()).unwrap();
    }
    let index = log.append(&payload).unwrap();
    log.append(b"later leaf").unwrap();
    let size = log.size();
    let root_hash = tlog::root(size, &log).unwrap();
    let proof = tlog::inclusion_proof(size, index, &log).unwrap();
    let checkpoint = tlog::sign_checkpoint(
        &tlog::Checkpoint {
            origin: origin.into(),
            size,
            root: root_hash,
        },
        &key.note_signer(origin),
    )
    .unwrap();
    let valid = ReceiptBundle {
        media_type: MEDIA_TYPE.into(),
        dsse_envelope: dsse::sign(PAYLOAD_TYPE, &payload, &key).unwrap(),
        public_key: KeyHint::of(key.public()),
        log_entry: LogEntry {
            origin: origin.into(),
            log_index: index,
            tree_size: size,
            root_hash: tlog::hex_hash(&root_hash),
            inclusion_proof: proof.iter().map(tlog::hex_hash).collect(),
            checkpoint,
        },
    };
    let mut tampered = valid.clone();
    let mut s: Value = serde_json::from_slice(&payload).unwrap();
    s["predicate"]["region"] = json!("us-east");
    tampered.dsse_envelope.payload =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&s).unwrap());
    let mut wrong_proof = valid.clone();
    wrong_proof.log_entry.inclusion_proof[0] = "ab".repeat(32);
    let mut wrong_checkpoint = valid.clone();
    wrong_checkpoint.log_entry.checkpoint = valid.log_entry.checkpoint.replacen(
        &format!("\n{size}\n"),
        &format!("\n{}\n", size + 1),
        1,
    );
    let write = |name: &str, v: &ReceiptBundle| {
        std::fs::write(
            dir.join(name),
            serde_json::to_string_pretty(v).unwrap() + "\n",
        )
        .unwrap()
    };
    write("valid.receipt.json", &valid);
    write("tampered-payload.receipt.json", &tampered);
    write("wrong-inclusion-proof.receipt.json", &wrong_proof);
    write("wrong-checkpoint.receipt.json", &wrong_checkpoint);
    std::fs::write(dir.join("key.pub.pem"), key.public().pem()).unwrap();
    std::fs::write(dir.join("other.pub.pem"), other.public().pem()).unwrap();
}

#[test]
fn receipt_vectors_verify_as_expected() {
    let dir = root().join("fixtures/conformance/receipts");
    if regen() {
        regenerate_receipts(&dir);
    }
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let file = case["receipt"].as_str().unwrap();
        let key = PublicKey::from_pem(
            &std::fs::read_to_string(dir.join(case["key"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        let report = receipt::verify(
            &std::fs::read(dir.join(file)).unwrap(),
            &Trust {
                keys: vec![key],
                origin: case["origin"].as_str().map(str::to_owned),
            },
        );
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(report.valid, case["valid"] == true, "{file}: {report:#?}");
        let expected: Vec<&str> = case["failed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(failed, expected, "{}", case["name"]);
    }
}
