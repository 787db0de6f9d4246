//! Search index tests: documents follow the change sequence, every field is searchable,
//! tenants are filtered by the caller's list only, and the index resumes or rebuilds.

use super::*;
use crate::domain::actor::{Access, TenantScope};
use crate::domain::execution::{Artifact, DenyReason, ExecutionStatus, ReceiptRef};
use crate::domain::ids::Digest;
use crate::domain::search::parse;
use crate::domain::validate::{self, Context};

fn scope(t: &str) -> TenantScope {
    TenantScope::system(TenantId::new(t).unwrap(), Access::Run)
}

fn exec(tenant: &str, name: &str, status: ExecutionStatus) -> Execution {
    let v = validate::load(
        &format!("name: {name}\nversion: \"1.0.0\"\nregion: eu-west\ndescription: nightly load of the ledger\ntasks:\n  - {{id: fetch, uses: builtin/echo, with: {{message: hi}}}}\n"),
        &Context::default(),
    )
    .unwrap();
    let mut e = Execution::new(
        ExecutionId::generate(),
        TenantId::new(tenant).unwrap(),
        v.manifest,
        v.digest,
        false,
        "t".into(),
        jiff::Timestamp::now(),
    );
    e.status = status;
    e
}

fn tenants(names: &[&str]) -> Vec<TenantScope> {
    names
        .iter()
        .map(|n| TenantScope::system(TenantId::new(n).unwrap(), Access::Read))
        .collect()
}

fn ids(r: &Results) -> Vec<String> {
    r.hits.iter().map(|h| h.id.clone()).collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    index: SearchIndex,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let index = SearchIndex::open(&dir.path().join("index")).unwrap();
    Fixture {
        _dir: dir,
        store,
        index,
    }
}

fn search(f: &Fixture, who: &[&str], q: &str) -> Results {
    f.index
        .search(&tenants(who), &parse(q).unwrap(), 50, 0)
        .unwrap()
}

#[test]
fn every_field_is_searchable_and_only_in_the_named_tenants() {
    let f = fixture();
    let mut failed = exec("acme", "etl", ExecutionStatus::Failed);
    failed.error = Some("task fetch timed out after 30s".into());
    let artifact = Digest::of(b"report");
    failed.artifacts.push(Artifact {
        task: "fetch".into(),
        name: "report.csv".into(),
        digest: artifact,
        size: 6,
        media_type: "text/csv".into(),
        location: "eu-bucket".into(),
        region: "eu-central".into(),
    });
    let receipt = Digest::of(b"receipt");
    failed.receipt = Some(ReceiptRef {
        digest: receipt,
        log_index: 0,
    });
    let mut denied = exec("acme", "deploy", ExecutionStatus::Denied);
    denied.decisions.push(Decision {
        id: DecisionId::generate(),
        tenant: denied.tenant.clone(),
        execution: Some(denied.id.clone()),
        kind: "admission".into(),
        policy: "mc.admission".into(),
        policy_digest: Digest::of(b"bundle"),
        input_digest: Digest::of(b"input"),
        input: serde_json::json!({}),
        allow: false,
        reasons: vec![DenyReason {
            code: "http_host_not_allowed".into(),
            message: "host evil.example is not on the allow-list".into(),
        }],
        decided_at: jiff::Timestamp::now(),
    });
    let other = exec("globex", "etl", ExecutionStatus::Failed);
    f.store
        .write(|w| {
            w.put_execution(&scope("acme"), &failed)?;
            w.put_execution(&scope("acme"), &denied)?;
            w.put_execution(&scope("globex"), &other)
        })
        .unwrap();
    assert_eq!(f.index.catch_up(&f.store).unwrap(), 3);
    let fid = failed.id.to_string();
    let did = denied.id.to_string();
    for (q, want) in [
        (format!("sha256:{}", artifact.hex()), vec![fid.clone()]),
        (artifact.hex()[..10].to_owned(), vec![fid.clone()]),
        (format!("digest:{}", &receipt.hex()[..6]), vec![fid.clone()]),
        (receipt.to_string(), vec![fid.clone()]),
        (fid.clone(), vec![fid.clone()]),
        ("status:failed".into(), vec![fid.clone()]),
        ("name:etl".into(), vec![fid.clone()]),
        ("task:fetch".into(), vec![did.clone(), fid.clone()]),
        ("uses:builtin/echo".into(), vec![did.clone(), fid.clone()]),
        ("region:eu-central".into(), vec![fid.clone()]),
        ("policy:mc.admission".into(), vec![did.clone()]),
        ("reason:http_host_not_allowed".into(), vec![did.clone()]),
        ("reason:\"not on the allow-list\"".into(), vec![did.clone()]),
        ("\"timed out\"".into(), vec![fid.clone()]),
        ("ledger".into(), vec![did.clone(), fid.clone()]),
        ("ledger -status:denied".into(), vec![fid.clone()]),
        ("kind:decision".into(), vec![]),
        (
            "after:2000-01-01 before:2999-01-01 name:deploy".into(),
            vec![did.clone()],
        ),
        ("before:2000-01-01".into(), vec![]),
    ] {
        assert_eq!(ids(&search(&f, &["acme"], &q)), want, "{q}");
    }
    // The denied execution's summary is its deny reason; the failed one's its error.
    let r = search(&f, &["acme"], "");
    assert_eq!(r.total, 2);
    assert_eq!(
        r.hits[0].summary.as_deref(),
        Some("http_host_not_allowed: host evil.example is not on the allow-list")
    );
    assert_eq!(
        r.hits[1].receipt.as_deref(),
        Some(receipt.to_string().as_str())
    );
    // Globex sees its own execution only; nobody sees anything with no tenant.
    assert_eq!(
        ids(&search(&f, &["globex"], "name:etl")),
        vec![other.id.to_string()]
    );
    assert!(ids(&search(&f, &["globex"], &artifact.hex())).is_empty());
    assert!(search(&f, &[], "").hits.is_empty());
    assert_eq!(search(&f, &["acme", "globex"], "name:etl").total, 2);
}

#[test]
fn updates_replace_documents_and_pages_follow_the_cursor() {
    let f = fixture();
    let mut all = Vec::new();
    // Out of time order and one commit each: several segments, each sorted newest first;
    // pages must still come out newest first across them.
    for i in [3, 0, 6, 1, 5, 2, 4] {
        let mut e = exec("acme", &format!("job-{i}"), ExecutionStatus::Queued);
        e.submitted_at = jiff::Timestamp::from_second(1_700_000_000 + i).unwrap();
        f.store
            .write(|w| w.put_execution(&scope("acme"), &e))
            .unwrap();
        f.index.catch_up(&f.store).unwrap();
        all.push(e);
    }
    all.sort_by_key(|e| e.submitted_at);
    // Finishing rewrites the document: one per execution, with the new status.
    let mut done = all[3].clone();
    done.status = ExecutionStatus::Succeeded;
    f.store
        .write(|w| w.put_execution(&scope("acme"), &done))
        .unwrap();
    f.index.catch_up(&f.store).unwrap();
    assert_eq!(f.index.state().documents, 7);
    assert_eq!(
        ids(&search(&f, &["acme"], "status:succeeded")),
        vec![done.id.to_string()]
    );
    let queued = search(&f, &["acme"], "status:queued");
    assert_eq!((queued.total, queued.total_exact), (6, true));
    // Newest first, three at a time.
    let q = parse("").unwrap();
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = f.index.search(&tenants(&["acme"]), &q, 3, offset).unwrap();
        seen.extend(ids(&page));
        match page.next_cursor {
            Some(c) => offset = c.parse().unwrap(),
            None => break,
        }
    }
    let want: Vec<String> = all.iter().rev().map(|e| e.id.to_string()).collect();
    assert_eq!(seen, want);
}

#[test]
fn the_index_resumes_from_its_commit_and_rebuilds_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let first = exec("acme", "one", ExecutionStatus::Succeeded);
    store
        .write(|w| w.put_execution(&scope("acme"), &first))
        .unwrap();
    {
        let index = SearchIndex::open(&dir.path().join("index")).unwrap();
        index.catch_up(&store).unwrap();
        assert_eq!(index.state().through, Some(0));
    }
    // Written while the index was closed: picked up from the recorded sequence.
    let second = exec("acme", "two", ExecutionStatus::Succeeded);
    store
        .write(|w| w.put_execution(&scope("acme"), &second))
        .unwrap();
    let index = SearchIndex::open(&dir.path().join("index")).unwrap();
    assert_eq!(index.state().through, Some(0));
    assert_eq!(index.catch_up(&store).unwrap(), 1);
    assert_eq!(index.state().documents, 2);
    // A rebuild gives the same documents and the same position.
    let mut calls = Vec::new();
    let read = index.rebuild(&store, |d, t| calls.push((d, t))).unwrap();
    assert_eq!(read, 2);
    assert_eq!(calls.last(), Some(&(2, 2)));
    assert_eq!(index.state().documents, 2);
    assert_eq!(index.state().through, Some(1));
    drop(index);
    // A damaged index is discarded on open, and catching up rebuilds it.
    std::fs::write(dir.path().join("index/meta.json"), b"{not json").unwrap();
    let index = SearchIndex::open(&dir.path().join("index")).unwrap();
    assert_eq!(
        index.state(),
        IndexState {
            through: None,
            documents: 0
        }
    );
    index.catch_up(&store).unwrap();
    assert_eq!(index.state().documents, 2);
    assert_eq!(index.state().through, Some(1));
}

#[test]
fn decisions_without_an_execution_are_documents_of_their_own() {
    let f = fixture();
    let d = Decision {
        id: DecisionId::generate(),
        tenant: TenantId::new("acme").unwrap(),
        execution: None,
        kind: "access".into(),
        policy: "mc.isolation".into(),
        policy_digest: Digest::of(b"bundle"),
        input_digest: Digest::of(b"access input"),
        input: serde_json::json!({}),
        allow: false,
        reasons: vec![DenyReason {
            code: "cross_tenant_access".into(),
            message: "globex may not read acme's executions".into(),
        }],
        decided_at: jiff::Timestamp::now(),
    };
    f.store
        .write(|w| w.put_decision(&scope("acme"), &d))
        .unwrap();
    f.index.catch_up(&f.store).unwrap();
    let r = search(&f, &["acme"], "reason:cross_tenant_access");
    assert_eq!(ids(&r), vec![d.id.to_string()]);
    assert_eq!(r.hits[0].kind, DocKind::Decision);
    assert_eq!(r.hits[0].status, "denied");
    assert_eq!(
        ids(&search(&f, &["acme"], "kind:decision status:denied")),
        vec![d.id.to_string()]
    );
    assert!(
        search(&f, &["globex"], "reason:cross_tenant_access")
            .hits
            .is_empty()
    );
}

#[test]
fn histograms_count_per_bucket() {
    let f = fixture();
    let base = jiff::Timestamp::from_second(1_700_000_000).unwrap();
    for (minute, status) in [
        (0, ExecutionStatus::Succeeded),
        (0, ExecutionStatus::Failed),
        (2, ExecutionStatus::Failed),
        (9, ExecutionStatus::Succeeded),
    ] {
        let mut e = exec("acme", "job", status);
        e.submitted_at = base + jiff::SignedDuration::from_mins(minute);
        f.store
            .write(|w| w.put_execution(&scope("acme"), &e))
            .unwrap();
    }
    f.index.catch_up(&f.store).unwrap();
    let acme = scope("acme");
    let minute = jiff::SignedDuration::from_mins(1);
    let all = f
        .index
        .histogram(&acme, &parse("").unwrap(), base, minute, 5)
        .unwrap();
    assert_eq!(all, vec![2, 0, 1, 0, 0]);
    let failed = f
        .index
        .histogram(&acme, &parse("status:failed").unwrap(), base, minute, 5)
        .unwrap();
    assert_eq!(failed, vec![1, 0, 1, 0, 0]);
}
