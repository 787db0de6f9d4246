//! The auditor over a real store: the generated corpus is found exactly (no planted
//! violation missed, nothing clean flagged), findings are stored once, incremental audits
//! read only new receipts, a rule change triggers a full audit that resolves what no longer
//! holds and reopens what holds again, and hand resolutions are kept.

use super::corpus;
use super::*;
use crate::attest::keys::{Algorithm, SigningKey};

fn setup(n: usize, seed: u64) -> (tempfile::TempDir, Store, SigningKey, corpus::Corpus) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let c = corpus::generate(seed, n);
    corpus::write(&store, &key, &c).unwrap();
    (dir, store, key, c)
}

#[test]
fn the_corpus_is_found_exactly() {
    let (_dir, store, _key, c) = setup(600, 7);
    let o = audit(&store, &c.rules, false).unwrap();
    assert!(o.full, "the first audit reads every receipt");
    assert_eq!(o.receipts, 600);
    assert_eq!(o.unreadable_count, 0, "{:?}", o.unreadable);
    let all = store.read().unwrap().all_violations().unwrap();
    let cmp = corpus::compare(&c, &all);
    assert!(cmp.missed.is_empty(), "missed: {:#?}", cmp.missed);
    assert!(
        cmp.unexpected.is_empty(),
        "unexpected: {:#?}",
        cmp.unexpected
    );
    assert_eq!(cmp.kinds, corpus::planted_kinds());
    assert!(cmp.clean > 200 && cmp.planted > 200, "{cmp:?}");
    assert_eq!(o.new, cmp.expected_findings);
    assert_eq!(o.open, all.len());
}

#[test]
fn findings_are_stored_once_and_audits_resume_from_the_cursor() {
    let (_dir, store, key, c) = setup(100, 1);
    let first = audit(&store, &c.rules, false).unwrap();
    let again = audit(&store, &c.rules, false).unwrap();
    assert!(!again.full);
    assert_eq!((again.receipts, again.new), (0, 0));
    let forced = audit(&store, &c.rules, true).unwrap();
    assert_eq!((forced.receipts, forced.new, forced.resolved), (100, 0, 0));
    assert_eq!(forced.open, first.open);

    // New receipts after the cursor: only they are read.
    let more = corpus::generate(2, 50);
    corpus::write(&store, &key, &more).unwrap();
    let inc = audit(&store, &c.rules, false).unwrap();
    assert!(!inc.full);
    assert_eq!(inc.receipts, 50);
    assert_eq!(inc.through, 150);
    let expected: usize = more.runs.iter().map(|r| r.expected.len()).sum();
    assert_eq!(inc.new, expected);
}

#[test]
fn a_rule_change_rescans_resolves_and_reopens() {
    let (_dir, store, _key, c) = setup(60, 3);
    audit(&store, &c.rules, false).unwrap();
    let retagged_open = |s: &Store| {
        s.read()
            .unwrap()
            .all_violations()
            .unwrap()
            .into_iter()
            .filter(|v| v.is_open() && v.finding.location.as_deref() == Some("retagged-bucket"))
            .count()
    };
    assert!(retagged_open(&store) > 0);

    // The location is tagged back: a full audit resolves what no longer holds.
    let mut fixed = c.rules.clone();
    fixed.locations.get_mut("retagged-bucket").unwrap().region = "eu-west".into();
    let o = audit(&store, &fixed, false).unwrap();
    assert_eq!(
        o.full_because.as_deref(),
        Some("the residency rules changed")
    );
    assert!(o.resolved > 0 && o.new == 0, "{o:?}");
    assert_eq!(retagged_open(&store), 0);

    // Re-tagged wrongly again: the same violations reopen, none is duplicated.
    let o = audit(&store, &c.rules, false).unwrap();
    assert_eq!((o.new, o.reopened), (0, o.resolved.max(o.reopened)));
    assert!(o.reopened > 0);
    assert!(retagged_open(&store) > 0);
}

#[test]
fn unreadable_receipts_are_reported_not_skipped_silently() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let scope = TenantScope::system(tenant.clone(), Access::Run);
    let id = ExecutionId::generate();
    store
        .write(|w| {
            w.append_receipt(
                &scope,
                &id,
                b"not json",
                serde_json::value::to_raw_value(&serde_json::json!({"payload": "bm90IGpzb24=", "payloadType": "x", "signatures": []})).unwrap(),
                "k".into(),
            )
            .map(|_| ())
        })
        .unwrap();
    let o = audit(&store, &corpus::audit_rules(), false).unwrap();
    assert_eq!(o.unreadable_count, 1);
    assert!(
        o.unreadable[0].contains("Statement cannot be read"),
        "{:?}",
        o.unreadable
    );
}
