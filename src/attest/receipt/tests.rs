//! Receipt verification: a valid receipt passes every check; each kind of tampering fails
//! exactly where it should.

use super::*;
use crate::attest::dsse;
use crate::attest::keys::SigningKey;
use crate::domain::execution::{Execution, ExecutionStatus, TaskStatus};
use crate::domain::ids::{ExecutionId, TenantId};
use crate::domain::receipt::{ApplianceInfo, ChainHead};
use crate::domain::validate::{self, Context};
use crate::tlog::{MemoryLog, NoteSigner as _};

const ORIGIN: &str = "maestro.test/log";

fn statement() -> Statement {
    let v = validate::load(
        "name: n\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - {id: a, uses: builtin/echo, with: {message: hi}}\n",
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
        "t".into(),
        now,
    );
    e.status = ExecutionStatus::Succeeded;
    e.tasks[0].status = TaskStatus::Succeeded;
    e.finished_at = Some(now);
    receipt::statement(
        &e,
        &ChainHead::default(),
        ApplianceInfo {
            version: "0".into(),
            log_origin: ORIGIN.into(),
        },
    )
}

/// A receipt for a statement logged at index 2 of a log of 5 leaves.
fn bundle(key: &SigningKey) -> ReceiptBundle {
    let payload = statement().to_payload();
    let env = dsse::sign(PAYLOAD_TYPE, &payload, key).unwrap();
    let mut log = MemoryLog::default();
    log.append(b"zero").unwrap();
    log.append(b"one").unwrap();
    let index = log.append(&payload).unwrap();
    log.append(b"three").unwrap();
    log.append(b"four").unwrap();
    let root = tlog::root(5, &log).unwrap();
    let proof = tlog::inclusion_proof(5, index, &log).unwrap();
    let signer = key.note_signer(ORIGIN);
    assert_eq!(signer.key_name(), ORIGIN);
    let checkpoint = tlog::sign_checkpoint(
        &tlog::Checkpoint {
            origin: ORIGIN.into(),
            size: 5,
            root,
        },
        &signer,
    )
    .unwrap();
    ReceiptBundle {
        media_type: MEDIA_TYPE.into(),
        dsse_envelope: env,
        public_key: KeyHint::of(key.public()),
        log_entry: LogEntry {
            origin: ORIGIN.into(),
            log_index: index,
            tree_size: 5,
            root_hash: tlog::hex_hash(&root),
            inclusion_proof: proof.iter().map(tlog::hex_hash).collect(),
            checkpoint,
        },
    }
}

fn run(b: &ReceiptBundle, key: &SigningKey) -> Report {
    verify(
        &serde_json::to_vec(b).unwrap(),
        &Trust {
            keys: vec![key.public().clone()],
            origin: None,
        },
    )
}

fn failed(r: &Report) -> Vec<&str> {
    r.checks
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .map(|c| c.name.as_str())
        .collect()
}

#[test]
fn a_valid_receipt_passes_every_check() {
    for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256] {
        let key = SigningKey::generate(alg).unwrap();
        let r = run(&bundle(&key), &key);
        assert!(r.valid, "{r:#?}");
        assert_eq!(r.checks.len(), 6);
        assert_eq!(r.status.as_deref(), Some("succeeded"));
    }
}

#[test]
fn a_tampered_payload_fails_signature_and_inclusion() {
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let mut b = bundle(&key);
    let mut s: Statement =
        serde_json::from_slice(&b.dsse_envelope.payload_bytes().unwrap()).unwrap();
    s.predicate.region = "us-east".into();
    use base64::Engine as _;
    b.dsse_envelope.payload = base64::engine::general_purpose::STANDARD.encode(s.to_payload());
    assert_eq!(failed(&run(&b, &key)), ["signature", "inclusion"]);
}

#[test]
fn a_wrong_key_fails_signature_and_checkpoint() {
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let other = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let r = run(&bundle(&key), &other);
    assert_eq!(failed(&r), ["signature", "checkpoint"]);
    assert!(
        r.checks[1].detail.contains("not a trusted key"),
        "{}",
        r.checks[1].detail
    );
}

#[test]
fn a_wrong_proof_fails_inclusion_only() {
    let key = SigningKey::generate(Algorithm::EcdsaP256).unwrap();
    let mut b = bundle(&key);
    b.log_entry.inclusion_proof[0] = "00".repeat(32);
    assert_eq!(failed(&run(&b, &key)), ["inclusion"]);
    let mut b = bundle(&key);
    b.log_entry.log_index = 3;
    assert_eq!(failed(&run(&b, &key)), ["inclusion"]);
    let mut b = bundle(&key);
    b.log_entry.inclusion_proof.push("zz".into());
    assert_eq!(failed(&run(&b, &key)), ["inclusion"]);
}

#[test]
fn a_forged_checkpoint_fails() {
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let mut b = bundle(&key);
    b.log_entry.checkpoint = b.log_entry.checkpoint.replacen("\n5\n", "\n6\n", 1);
    let r = run(&b, &key);
    assert_eq!(failed(&r), ["checkpoint"]);
    assert_eq!(r.checks[5].outcome, Outcome::Skipped);
    let mut b = bundle(&key);
    b.log_entry.tree_size = 4;
    assert!(failed(&run(&b, &key)).contains(&"checkpoint"));
}

#[test]
fn a_pinned_origin_must_match() {
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let r = verify(
        &serde_json::to_vec(&bundle(&key)).unwrap(),
        &Trust {
            keys: vec![key.public().clone()],
            origin: Some("elsewhere/log".into()),
        },
    );
    assert_eq!(failed(&r), ["checkpoint"]);
}

#[test]
fn garbage_is_a_format_failure() {
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let r = verify(
        b"{not json",
        &Trust {
            keys: vec![key.public().clone()],
            origin: None,
        },
    );
    assert!(!r.valid);
    assert_eq!(failed(&r), ["format"]);
    assert_eq!(r.checks.len(), 6);
}
