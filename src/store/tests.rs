//! Store tests: schema handling, tenant scoping, lists, receipts and the log, atomicity.

use super::*;
use crate::domain::actor::{Access, TenantScope};
use crate::domain::execution::{Execution, ExecutionStatus};
use crate::domain::ids::{ExecutionId, TenantId};
use crate::domain::validate::{self, Context};
use crate::tlog::{self, MemoryLog};
use redb::TableHandle as _;
use std::collections::BTreeMap;

fn raw() -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string("{}".into()).unwrap()
}

fn scope(t: &str) -> TenantScope {
    TenantScope::system(TenantId::new(t).unwrap(), Access::Run)
}

fn exec(tenant: &str, name: &str) -> Execution {
    let v = validate::load(
        &format!("name: {name}\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - {{id: a, uses: builtin/echo, with: {{message: hi}}}}\n"),
        &Context::default(),
    )
    .unwrap();
    Execution::new(
        ExecutionId::generate(),
        TenantId::new(tenant).unwrap(),
        v.manifest,
        v.digest,
        false,
        "t".into(),
        jiff::Timestamp::now(),
    )
}

#[test]
fn schema_version_is_recorded_and_newer_versions_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.meta("schema_version").unwrap().unwrap(),
            SCHEMA_VERSION.to_le_bytes()
        );
        store
            .set_meta("schema_version", &99u32.to_le_bytes())
            .unwrap();
    }
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                supported: SCHEMA_VERSION
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("newer than this maestro supports"));
}

#[test]
fn a_second_opener_is_told_the_directory_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
    assert!(
        err.to_string()
            .contains("in use by another maestro process")
    );
}

#[test]
fn garbage_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![0x42u8; 8192]).unwrap();
    assert!(Store::open(dir.path()).is_err());
}

#[test]
fn tenants_only_see_their_own_executions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = exec("acme", "w");
    let b = exec("globex", "w");
    store
        .write(|w| {
            w.put_execution(&scope("acme"), &a)?;
            w.put_execution(&scope("globex"), &b)
        })
        .unwrap();
    let r = store.read().unwrap();
    assert_eq!(r.execution(&scope("acme"), &a.id).unwrap().unwrap(), a);
    assert!(r.execution(&scope("globex"), &a.id).unwrap().is_none());
    assert!(r.execution(&scope("acme"), &b.id).unwrap().is_none());
    let page = r
        .list_executions(
            &scope("acme"),
            &ListQuery {
                limit: 50,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, a.id);
}

#[test]
fn writing_another_tenants_record_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ok = exec("acme", "w");
    let foreign = exec("globex", "w");
    let err = store
        .write(|w| {
            w.put_execution(&scope("acme"), &ok)?;
            w.put_execution(&scope("acme"), &foreign)
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::ScopeMismatch { .. }));
    assert!(
        store
            .read()
            .unwrap()
            .execution(&scope("acme"), &ok.id)
            .unwrap()
            .is_none()
    );
}

#[test]
fn lists_paginate_newest_first_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut all = Vec::new();
    for i in 0..25 {
        let mut e = exec("acme", if i % 2 == 0 { "even" } else { "odd" });
        if i % 5 == 0 {
            e.status = ExecutionStatus::Failed;
        }
        all.push(e);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    store
        .write(|w| {
            all.iter()
                .try_for_each(|e| w.put_execution(&scope("acme"), e))
        })
        .unwrap();
    let r = store.read().unwrap();
    let mut seen = Vec::new();
    let mut q = ListQuery {
        limit: 10,
        ..Default::default()
    };
    loop {
        let page = r.list_executions(&scope("acme"), &q).unwrap();
        seen.extend(page.items.iter().map(|s| s.id.clone()));
        match page.next_cursor {
            Some(c) => q.after = Some(ExecutionId::new(&c).unwrap()),
            None => break,
        }
    }
    let mut expected: Vec<_> = all.iter().map(|e| e.id.clone()).collect();
    expected.reverse();
    assert_eq!(seen, expected);
    // A page that ends exactly at the last record has no cursor, by status or not.
    for (limit, status) in [(25, None), (5, Some(ExecutionStatus::Failed))] {
        let exact = ListQuery {
            limit,
            status,
            ..Default::default()
        };
        let page = r.list_executions(&scope("acme"), &exact).unwrap();
        assert_eq!(page.items.len(), limit);
        assert_eq!(page.next_cursor, None, "limit {limit}, status {status:?}");
    }
    let failed = r
        .list_executions(
            &scope("acme"),
            &ListQuery {
                status: Some(ExecutionStatus::Failed),
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(failed.items.len(), 5);
    let odd = r
        .list_executions(
            &scope("acme"),
            &ListQuery {
                name: Some("odd".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(odd.items.len(), 12);
}

#[test]
fn status_changes_move_the_index_and_final_records_are_immutable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut e = exec("acme", "w");
    store
        .write(|w| w.put_execution(&scope("acme"), &e))
        .unwrap();
    assert_eq!(store.read().unwrap().active().unwrap().len(), 1);
    e.status = ExecutionStatus::Running;
    store
        .write(|w| w.put_execution(&scope("acme"), &e))
        .unwrap();
    assert_eq!(
        store.read().unwrap().active().unwrap()[0].2,
        ActiveState::Running
    );
    e.status = ExecutionStatus::Succeeded;
    store
        .write(|w| w.put_execution(&scope("acme"), &e))
        .unwrap();
    let r = store.read().unwrap();
    assert!(r.active().unwrap().is_empty());
    for (status, n) in [
        (ExecutionStatus::Queued, 0),
        (ExecutionStatus::Running, 0),
        (ExecutionStatus::Succeeded, 1),
    ] {
        let q = ListQuery {
            status: Some(status),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(
            r.list_executions(&scope("acme"), &q).unwrap().items.len(),
            n,
            "{status:?}"
        );
    }
    e.status = ExecutionStatus::Failed;
    assert!(
        store
            .write(|w| w.put_execution(&scope("acme"), &e))
            .is_err()
    );
}

#[test]
fn receipts_chain_per_tenant_and_the_log_matches_an_independent_tree() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut mem = MemoryLog::default();
    let mut refs = Vec::new();
    for i in 0..20 {
        let tenant = if i % 3 == 0 { "globex" } else { "acme" };
        let e = exec(tenant, "w");
        let payload = format!("statement {i}").into_bytes();
        mem.append(&payload).unwrap();
        let r = store
            .write(|w| {
                w.put_execution(&scope(tenant), &e)?;
                w.append_receipt(&scope(tenant), &e.id, &payload, raw(), "k".into())
            })
            .unwrap();
        assert_eq!(r.log_index, i);
        refs.push((tenant, e.id.clone(), r));
    }
    let r = store.read().unwrap();
    assert_eq!(r.log_size().unwrap(), 20);
    let hashes = r.log_hashes().unwrap();
    assert_eq!(
        tlog::root(20, &hashes).unwrap(),
        tlog::root(20, &mem).unwrap()
    );
    let acme = r.chain_head(&TenantId::new("acme").unwrap()).unwrap();
    assert_eq!(acme.count, 13);
    assert_eq!(
        acme.last,
        refs.iter()
            .rev()
            .find(|x| x.0 == "acme")
            .map(|x| x.2.digest)
    );
    let (tenant, id, rr) = &refs[4];
    let by_digest = r
        .receipt_by_digest(&scope(tenant), &rr.digest)
        .unwrap()
        .unwrap();
    assert_eq!(&by_digest.0, id);
    assert!(
        r.receipt_by_digest(&scope("globex"), &rr.digest)
            .unwrap()
            .is_none()
    );
    assert_eq!(r.log_leaf(4).unwrap().unwrap().1, *id);
    let again = store.write(|w| w.append_receipt(&scope(tenant), id, b"x", raw(), "k".into()));
    assert!(again.is_err());
}

#[test]
fn changes_are_recorded_in_commit_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = exec("acme", "w");
    let b = exec("globex", "w");
    store
        .write(|w| w.put_execution(&scope("acme"), &a))
        .unwrap();
    store
        .write(|w| w.put_execution(&scope("globex"), &b))
        .unwrap();
    let r = store.read().unwrap();
    let all = r.changes_after(None, 10).unwrap();
    assert_eq!(
        all.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [a.id.as_str(), b.id.as_str()]
    );
    assert_eq!(r.changes_after(Some(all[0].seq), 10).unwrap().len(), 1);
}

#[test]
fn artifacts_are_content_addressed_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bytes = b"report".to_vec();
    let d = crate::domain::ids::Digest::of(&bytes);
    store
        .write(|w| w.put_artifact(&scope("acme"), &d, &bytes))
        .unwrap();
    let r = store.read().unwrap();
    assert_eq!(r.artifact(&scope("acme"), &d).unwrap().unwrap(), bytes);
    assert!(r.artifact(&scope("globex"), &d).unwrap().is_none());
    let wrong = crate::domain::ids::Digest::of(b"other");
    assert!(
        store
            .write(|w| w.put_artifact(&scope("acme"), &wrong, &bytes))
            .is_err()
    );
}

/// An envelope whose statement names `tenant` and `id`.
fn envelope(tenant: &str, id: &str) -> Box<serde_json::value::RawValue> {
    use base64::Engine as _;
    let statement =
        serde_json::json!({"predicate": {"tenant": tenant, "executionId": id}}).to_string();
    let payload = base64::engine::general_purpose::STANDARD.encode(statement);
    serde_json::value::RawValue::from_string(
        serde_json::json!({"payload": payload, "payloadType": "x", "signatures": []}).to_string(),
    )
    .unwrap()
}

#[test]
fn the_boundary_scan_finds_records_that_name_another_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for (i, tenant) in ["acme", "acme", "globex"].into_iter().enumerate() {
        let e = exec(tenant, "w");
        store
            .write(|w| {
                w.put_execution(&scope(tenant), &e)?;
                w.append_receipt(
                    &scope(tenant),
                    &e.id,
                    format!("s{i}").as_bytes(),
                    envelope(tenant, e.id.as_str()),
                    "k".into(),
                )
            })
            .unwrap();
    }
    let clean = store.read().unwrap().boundary_scan().unwrap();
    assert_eq!(clean.problems, vec![]);
    assert_eq!(clean.tenants["acme"].executions, 2);
    assert_eq!(clean.tenants["acme"].receipts, 2);
    assert_eq!(clean.tenants["globex"].receipts, 1);
    assert_eq!(clean.log_leaves, 3);
    assert!(clean.checked >= 9, "{}", clean.checked);

    // A receipt filed under acme whose signed statement names globex.
    let e = exec("acme", "w");
    store
        .write(|w| {
            w.put_execution(&scope("acme"), &e)?;
            w.append_receipt(
                &scope("acme"),
                &e.id,
                b"planted",
                envelope("globex", e.id.as_str()),
                "k".into(),
            )
        })
        .unwrap();
    let scan = store.read().unwrap().boundary_scan().unwrap();
    assert_eq!(scan.problem_count, 1, "{:?}", scan.problems);
    assert!(
        scan.problems_of(Area::Storage)
            .next()
            .unwrap()
            .contains("signs tenant globex"),
        "{:?}",
        scan.problems
    );
}

#[test]
fn evidence_is_written_once_under_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .write(|w| w.put_evidence(Some(&scope("acme")), "rep_1", b"report"))
        .unwrap();
    store
        .write(|w| w.put_evidence(None, "rep_1", b"appliance report"))
        .unwrap();
    let again = store.write(|w| w.put_evidence(Some(&scope("acme")), "rep_1", b"other"));
    assert!(again.unwrap_err().to_string().contains("never rewritten"));
    let r = store.read().unwrap();
    assert_eq!(
        r.evidence(Some(&scope("acme")), "rep_1").unwrap().unwrap(),
        b"report"
    );
    assert_eq!(
        r.evidence(None, "rep_1").unwrap().unwrap(),
        b"appliance report"
    );
    assert!(
        r.evidence(Some(&scope("globex")), "rep_1")
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_snapshot_copies_every_table_whole_and_refuses_unknown_tables() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let all: Vec<Execution> = (0..23)
        .map(|i| exec(if i % 3 == 0 { "globex" } else { "acme" }, "w"))
        .collect();
    store
        .write(|w| {
            all.iter()
                .try_for_each(|e| w.put_execution(&scope(e.tenant.as_str()), e))
        })
        .unwrap();
    store.set_meta("custom", b"value").unwrap();

    // Small chunks: a table is copied over several transactions.
    let copy_dir = tempfile::tempdir().unwrap();
    let snap = store.snapshot_in_chunks(copy_dir.path(), 5).unwrap();
    assert_eq!(snap.schema_version, SCHEMA_VERSION);
    assert_eq!(snap.tables["executions"], 23);
    assert_eq!(snap.tables["executions_by_status"], 23);
    assert_eq!(snap.tables.len(), 21, "{:?}", snap.tables);
    let src = store.read().unwrap();
    let source_counts: BTreeMap<String, u64> = src
        .txn
        .list_tables()
        .unwrap()
        .map(|h| h.name().to_owned())
        .map(|name| {
            let n = *snap
                .tables
                .get(&name)
                .unwrap_or_else(|| panic!("{name} not copied"));
            (name, n)
        })
        .collect();
    assert_eq!(source_counts, snap.tables);
    // A second snapshot into the same place is refused.
    assert!(matches!(
        store.snapshot(copy_dir.path()),
        Err(StoreError::Invalid(_))
    ));
    drop(src);

    let copy = Store::open(copy_dir.path()).unwrap();
    let r = copy.read().unwrap();
    for e in &all {
        assert_eq!(
            r.execution(&scope(e.tenant.as_str()), &e.id)
                .unwrap()
                .as_ref(),
            Some(e)
        );
    }
    assert_eq!(copy.meta("custom").unwrap().as_deref(), Some(&b"value"[..]));
    drop(r);
    drop(copy);

    // A table this build does not know (a newer maestro's) is refused, not left out.
    {
        let txn = store.db.begin_write().unwrap();
        {
            let mut t = txn
                .open_table(redb::TableDefinition::<&str, &str>::new("from_the_future"))
                .unwrap();
            t.insert("k", "v").unwrap();
        }
        txn.commit().unwrap();
    }
    let other = tempfile::tempdir().unwrap();
    let err = store.snapshot(other.path()).unwrap_err();
    assert!(err.to_string().contains("from_the_future"), "{err}");
}
