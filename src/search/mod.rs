//! The provenance search index (tantivy): executions (with their tasks, artifacts, receipt
//! and admission decisions) and decisions that belong to no execution, searchable by digest
//! (full or prefix), id, status, name, task, `uses`, policy, deny reason, region, time and
//! free text. The only importer of tantivy.
//!
//! The index is derived state. It follows the store's change sequence ([`SearchIndex::catch_up`])
//! and records the last change it holds in the same tantivy commit as the documents, so after
//! a crash it resumes exactly where its last commit ended; [`SearchIndex::rebuild`] recreates
//! it from the store. Every search names the tenants it may see (the guard's scopes), never
//! the query text.

use std::collections::HashSet;
use std::ops::Bound;
use std::path::Path;

use parking_lot::Mutex;
use tantivy::collector::HistogramCollector;
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, EnableScoring, Occur, PhraseQuery, RangeQuery, TermQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, Value as _,
};
use tantivy::tokenizer::TokenStream as _;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TERMINATED, TantivyDocument,
    Term,
};

use crate::domain::actor::{Access, TenantScope};
use crate::domain::execution::{Decision, Execution};
use crate::domain::ids::{DecisionId, ExecutionId, TenantId};
use crate::domain::search::{Clause, DocKind, Hit, Query, Results};
use crate::store::{Change, Store, StoreError};

/// Most hits in one page.
pub const MAX_LIMIT: usize = 100;
/// Most hits a search pages through (offset + limit).
pub const MAX_DEPTH: usize = 10_000;
/// Matches counted exactly; beyond, the total is a lower bound (`total_exact: false`).
pub const COUNT_CAP: u64 = 10_000;
/// Changes applied per commit when catching up.
const BATCH: usize = 5_000;
/// Memory of the index writer.
const WRITER_HEAP: usize = 64 * 1024 * 1024;
/// Version of the document layout; a different one rebuilds the index.
const LAYOUT: u32 = 3;

/// Why the index failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The index itself (files, commit).
    #[error("search index: {0}")]
    Index(String),
    /// Reading the store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        SearchError::Index(e.to_string())
    }
}

#[derive(Clone, Copy)]
struct Fields {
    key: Field,
    tenant: Field,
    kind: Field,
    canary: Field,
    id: Field,
    status: Field,
    name: Field,
    version: Field,
    region: Field,
    task: Field,
    uses: Field,
    digest: Field,
    policy: Field,
    reason: Field,
    reasons: Field,
    text: Field,
    ts: Field,
    receipt: Field,
    summary: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        key: b.add_text_field("key", STRING),
        tenant: b.add_text_field("tenant", STRING | STORED),
        kind: b.add_text_field("kind", STRING | STORED),
        canary: b.add_text_field("canary", STRING),
        id: b.add_text_field("id", STRING | STORED),
        status: b.add_text_field("status", STRING | STORED),
        name: b.add_text_field("name", STRING | STORED),
        version: b.add_text_field("version", STRING | STORED),
        region: b.add_text_field("region", STRING | STORED),
        task: b.add_text_field("task", STRING),
        uses: b.add_text_field("uses", STRING),
        digest: b.add_text_field("digest", STRING),
        policy: b.add_text_field("policy", STRING),
        reason: b.add_text_field("reason", STRING),
        reasons: b.add_text_field("reasons", TEXT),
        text: b.add_text_field("text", TEXT),
        ts: b.add_i64_field("ts", INDEXED | FAST | STORED),
        receipt: b.add_text_field("receipt", STORED),
        summary: b.add_text_field("summary", STORED),
    };
    (b.build(), f)
}

/// What the index holds and how far it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct IndexState {
    /// The last change of the store the index holds (`None`: none yet).
    pub through: Option<u64>,
    /// Documents in the index.
    pub documents: u64,
}

impl IndexState {
    /// How many changes of a store whose last change is `last` the index does not hold.
    pub fn behind(&self, last: Option<u64>) -> u64 {
        match (last, self.through) {
            (Some(l), Some(t)) => l.saturating_sub(t),
            (Some(l), None) => l + 1,
            (None, _) => 0,
        }
    }
}

/// The search index of one data directory.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    through: Mutex<Option<u64>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    layout: u32,
    through: Option<u64>,
}

fn micros(t: jiff::Timestamp) -> i64 {
    t.as_microsecond()
}

fn key(tenant: &str, kind: DocKind, id: &str) -> String {
    format!("{tenant}/{}/{id}", kind.as_str())
}

fn one_line(s: &str) -> String {
    let line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(240)
        .collect();
    line.trim().to_owned()
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it when absent. An index written with another
    /// document layout, or that cannot be read, is discarded (it is derived state): it then
    /// holds nothing and [`SearchIndex::state`] says so, and catching up rebuilds it.
    pub fn open(dir: &Path) -> Result<SearchIndex, SearchError> {
        match Self::try_open(dir) {
            Ok(Some(i)) => Ok(i),
            Ok(None) | Err(_) => {
                tracing::warn!(dir = %dir.display(), "the search index is missing, unreadable or of another layout; it is rebuilt from the store");
                if dir.exists() {
                    std::fs::remove_dir_all(dir)
                        .map_err(|e| SearchError::Index(format!("{}: {e}", dir.display())))?;
                }
                Self::try_open(dir)?.ok_or_else(|| {
                    SearchError::Index(format!("{}: a fresh index did not open", dir.display()))
                })
            }
        }
    }

    fn try_open(dir: &Path) -> Result<Option<SearchIndex>, SearchError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| SearchError::Index(format!("{}: {e}", dir.display())))?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir)
            .map_err(|e| SearchError::Index(format!("{}: {e}", dir.display())))?;
        // Documents sorted newest first in every segment, so a search can stop after the
        // first matches of each segment instead of ranking every match.
        let settings = tantivy::IndexSettings {
            sort_by_field: Some(tantivy::IndexSortByField {
                field: "ts".into(),
                order: Order::Desc,
            }),
            ..Default::default()
        };
        let index = Index::builder()
            .schema(schema)
            .settings(settings)
            .open_or_create(directory)?;
        let payload = index.load_metas()?.payload;
        let through = match payload {
            None => None,
            Some(p) => match serde_json::from_str::<Payload>(&p) {
                Ok(p) if p.layout == LAYOUT => p.through,
                _ => return Ok(None),
            },
        };
        let writer = index.writer_with_num_threads(1, WRITER_HEAP)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Some(SearchIndex {
            index,
            reader,
            writer: Mutex::new(writer),
            fields,
            through: Mutex::new(through),
        }))
    }

    /// How far the index is.
    pub fn state(&self) -> IndexState {
        IndexState {
            through: *self.through.lock(),
            documents: self.reader.searcher().num_docs(),
        }
    }

    fn execution_doc(&self, e: &Execution) -> TantivyDocument {
        let f = &self.fields;
        let mut d = TantivyDocument::new();
        let tenant = e.tenant.as_str();
        d.add_text(f.key, key(tenant, DocKind::Execution, e.id.as_str()));
        d.add_text(f.tenant, tenant);
        d.add_text(f.kind, DocKind::Execution.as_str());
        d.add_text(f.canary, if e.canary { "true" } else { "false" });
        d.add_text(f.id, e.id.as_str());
        d.add_text(f.status, e.status.as_str());
        d.add_text(f.name, &e.manifest.name);
        d.add_text(f.version, &e.manifest.version);
        d.add_text(f.region, &e.region);
        d.add_i64(f.ts, micros(e.submitted_at));
        d.add_text(f.digest, e.manifest_digest.hex());
        let mut text = vec![
            e.manifest.name.clone(),
            e.manifest.version.clone(),
            e.submitted_by.clone(),
        ];
        if let Some(desc) = &e.manifest.description {
            text.push(desc.clone());
        }
        for t in &e.manifest.tasks {
            d.add_text(f.task, &t.id);
            d.add_text(f.uses, &t.uses);
            text.push(t.id.clone());
            text.push(t.uses.clone());
        }
        for t in &e.tasks {
            for a in &t.attempts {
                if let Some(err) = &a.error {
                    text.push(err.clone());
                }
            }
        }
        let mut regions: HashSet<&str> = HashSet::from([e.region.as_str()]);
        for a in &e.artifacts {
            d.add_text(f.digest, a.digest.hex());
            if regions.insert(&a.region) {
                d.add_text(f.region, &a.region);
            }
            text.push(a.name.clone());
            text.push(a.location.clone());
        }
        if let Some(r) = &e.receipt {
            d.add_text(f.digest, r.digest.hex());
            d.add_text(f.receipt, r.digest.to_string());
        }
        let mut summary = None;
        for dec in &e.decisions {
            d.add_text(f.id, dec.id.as_str());
            d.add_text(f.policy, &dec.policy);
            d.add_text(f.digest, dec.input_digest.hex());
            for r in &dec.reasons {
                d.add_text(f.reason, &r.code);
                d.add_text(f.reasons, &r.message);
                if !dec.allow && summary.is_none() {
                    summary = Some(format!("{}: {}", r.code, r.message));
                }
            }
        }
        if let Some(err) = &e.error {
            text.push(err.clone());
            summary.get_or_insert_with(|| err.clone());
        }
        d.add_text(f.text, text.join("\n"));
        if let Some(s) = summary {
            d.add_text(f.summary, one_line(&s));
        }
        d
    }

    fn decision_doc(&self, dec: &Decision) -> TantivyDocument {
        let f = &self.fields;
        let mut d = TantivyDocument::new();
        let tenant = dec.tenant.as_str();
        d.add_text(f.key, key(tenant, DocKind::Decision, dec.id.as_str()));
        d.add_text(f.tenant, tenant);
        d.add_text(f.kind, DocKind::Decision.as_str());
        d.add_text(f.canary, "false");
        d.add_text(f.id, dec.id.as_str());
        d.add_text(f.status, if dec.allow { "allowed" } else { "denied" });
        d.add_text(f.name, &dec.policy);
        d.add_text(f.policy, &dec.policy);
        d.add_text(f.digest, dec.input_digest.hex());
        d.add_i64(f.ts, micros(dec.decided_at));
        let mut text = vec![dec.policy.clone(), dec.kind.clone()];
        for r in &dec.reasons {
            d.add_text(f.reason, &r.code);
            d.add_text(f.reasons, &r.message);
            text.push(r.code.clone());
        }
        d.add_text(f.text, text.join("\n"));
        if let Some(r) = dec.reasons.first() {
            d.add_text(f.summary, one_line(&format!("{}: {}", r.code, r.message)));
        }
        d
    }

    /// Applies the store's changes after the index's last one, in batches, each committed
    /// with the sequence it reaches, until none is left. Returns how many were applied.
    pub fn catch_up(&self, store: &Store) -> Result<u64, SearchError> {
        let mut applied = 0;
        loop {
            match self.step(store)? {
                0 => return Ok(applied),
                n => applied += n,
            }
        }
    }

    /// Applies one batch of the store's changes after the index's last one and commits it
    /// with the sequence it reaches. Returns how many changes were applied (0: caught up).
    pub fn step(&self, store: &Store) -> Result<u64, SearchError> {
        let reader = store.read()?;
        let fresh = self.through.lock().is_none();
        if fresh && reader.last_change()?.is_some() && self.state().documents == 0 {
            // A fresh index over existing data: a scan of the tables is faster than a
            // replay of every change.
            drop(reader);
            return self.rebuild(store, |_, _| {});
        }
        let mut writer = self.writer.lock();
        let from = *self.through.lock();
        let changes = reader.changes_after(from, BATCH)?;
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(0);
        };
        self.apply(&reader, &mut writer, &changes)?;
        self.commit(&mut writer, Some(last))?;
        Ok(changes.len() as u64)
    }

    fn apply(
        &self,
        reader: &crate::store::Reader,
        writer: &mut IndexWriter,
        changes: &[Change],
    ) -> Result<(), SearchError> {
        let mut seen = HashSet::new();
        // The latest state of each object is read once per batch, however often it changed.
        for c in changes.iter().rev() {
            let (kind, id) = match c.kind.as_str() {
                "execution" | "receipt" => (DocKind::Execution, c.id.as_str()),
                "decision" => (DocKind::Decision, c.id.as_str()),
                _ => continue,
            };
            if !seen.insert((c.tenant.as_str(), kind, id)) {
                continue;
            }
            let Ok(tenant) = TenantId::new(&c.tenant) else {
                continue;
            };
            // The appliance's own work: the index holds every tenant's documents and each
            // search filters by the guard's scopes.
            let scope = TenantScope::system(tenant, Access::Read);
            let key = key(&c.tenant, kind, id);
            match kind {
                DocKind::Execution => {
                    let Ok(id) = ExecutionId::new(id) else {
                        continue;
                    };
                    writer.delete_term(Term::from_field_text(self.fields.key, &key));
                    if let Some(e) = reader.execution(&scope, &id)? {
                        writer.add_document(self.execution_doc(&e))?;
                    }
                }
                DocKind::Decision => {
                    let Ok(id) = DecisionId::new(id) else {
                        continue;
                    };
                    if let Some(d) = reader.decision(&scope, &id)?
                        && d.execution.is_none()
                    {
                        writer.delete_term(Term::from_field_text(self.fields.key, &key));
                        writer.add_document(self.decision_doc(&d))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn commit(&self, writer: &mut IndexWriter, through: Option<u64>) -> Result<(), SearchError> {
        let payload = serde_json::to_string(&Payload {
            layout: LAYOUT,
            through,
        })
        .map_err(|e| SearchError::Index(e.to_string()))?;
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.reader.reload()?;
        *self.through.lock() = through;
        Ok(())
    }

    /// Recreates the index from one snapshot of the store, calling `progress(done, total)`
    /// as documents are added; the index then holds every change up to the snapshot's last.
    /// Returns how many objects were read.
    pub fn rebuild(
        &self,
        store: &Store,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64, SearchError> {
        let reader = store.read()?;
        let through = reader.last_change()?;
        let (executions, decisions) = reader.counts()?;
        let total = executions + decisions;
        let mut writer = self.writer.lock();
        writer.delete_all_documents()?;
        let mut done = 0u64;
        let mut failed: Option<SearchError> = None;
        // Adds a document (if any) and counts the object; false stops the scan on an error.
        let mut add = |doc: Option<TantivyDocument>| {
            if let Some(doc) = doc
                && let Err(err) = writer.add_document(doc)
            {
                failed = Some(err.into());
                return false;
            }
            done += 1;
            if done.is_multiple_of(1024) {
                progress(done, total);
            }
            true
        };
        for tenant in reader.tenants_with_data()? {
            let scope = TenantScope::system(tenant, Access::Read);
            reader.for_each_execution(&scope, |e| add(Some(self.execution_doc(&e))))?;
            reader.for_each_decision(&scope, |d| {
                add(d.execution.is_none().then(|| self.decision_doc(&d)))
            })?;
        }
        if let Some(e) = failed.take() {
            return Err(e);
        }
        self.commit(&mut writer, through)?;
        progress(done, total);
        Ok(done)
    }

    fn tenant_filter(&self, scopes: &[TenantScope]) -> Box<dyn tantivy::query::Query> {
        let clauses = scopes
            .iter()
            .map(|s| {
                (
                    Occur::Should,
                    Box::new(self.term(self.fields.tenant, s.tenant().as_str()))
                        as Box<dyn tantivy::query::Query>,
                )
            })
            .collect::<Vec<_>>();
        Box::new(BooleanQuery::new(clauses))
    }

    fn term(&self, field: Field, value: &str) -> TermQuery {
        TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        )
    }

    /// Words of `text` as the index tokenizes them: one term, a phrase, or nothing.
    fn words(&self, field: Field, text: &str) -> Box<dyn tantivy::query::Query> {
        let Ok(mut tokenizer) = self.index.tokenizer_for_field(field) else {
            return Box::new(EmptyQuery);
        };
        let mut stream = tokenizer.token_stream(text);
        let mut terms = Vec::new();
        while stream.advance() {
            terms.push(Term::from_field_text(field, &stream.token().text));
        }
        match terms.len() {
            0 => Box::new(EmptyQuery),
            1 => Box::new(TermQuery::new(
                terms.remove(0),
                IndexRecordOption::WithFreqs,
            )),
            _ => Box::new(PhraseQuery::new(terms)),
        }
    }

    fn clause(&self, c: &Clause) -> Box<dyn tantivy::query::Query> {
        let f = &self.fields;
        let exact =
            |field, v: &str| -> Box<dyn tantivy::query::Query> { Box::new(self.term(field, v)) };
        match c {
            Clause::Digest(hex) if hex.len() == 64 => exact(f.digest, hex),
            // Every term starting with the prefix lies in [prefix, prefix + "g"): digests are
            // lowercase hex, below 'g'. A term range walks the term dictionary once.
            Clause::Digest(hex) => Box::new(RangeQuery::new(
                Bound::Included(Term::from_field_text(f.digest, hex)),
                Bound::Excluded(Term::from_field_text(f.digest, &format!("{hex}g"))),
            )),
            Clause::Id(id) => exact(f.id, id),
            Clause::Status(s) => exact(f.status, s.as_str()),
            Clause::Name(v) => exact(f.name, v),
            Clause::Version(v) => exact(f.version, v),
            Clause::Task(v) => exact(f.task, v),
            Clause::Uses(v) => exact(f.uses, v),
            Clause::Region(v) => exact(f.region, v),
            Clause::Policy(v) => exact(f.policy, v),
            Clause::Reason(v) => Box::new(BooleanQuery::new(vec![
                (Occur::Should, exact(f.reason, v)),
                (Occur::Should, self.words(f.reasons, v)),
            ])),
            Clause::Kind(k) => exact(f.kind, k.as_str()),
            Clause::Canary(c) => exact(f.canary, if *c { "true" } else { "false" }),
            Clause::After(t) => Box::new(RangeQuery::new(
                Bound::Included(Term::from_field_i64(f.ts, micros(*t))),
                Bound::Unbounded,
            )),
            Clause::Before(t) => Box::new(RangeQuery::new(
                Bound::Unbounded,
                Bound::Excluded(Term::from_field_i64(f.ts, micros(*t))),
            )),
            Clause::Text(words) => Box::new(BooleanQuery::new(vec![
                (Occur::Should, self.words(f.text, words)),
                (Occur::Should, self.words(f.reasons, words)),
            ])),
        }
    }

    fn query(&self, scopes: &[TenantScope], q: &Query) -> Box<dyn tantivy::query::Query> {
        let mut clauses: Vec<(Occur, Box<dyn tantivy::query::Query>)> =
            vec![(Occur::Must, self.tenant_filter(scopes))];
        for t in &q.terms {
            let occur = if t.negated {
                Occur::MustNot
            } else {
                Occur::Must
            };
            clauses.push((occur, self.clause(&t.clause)));
        }
        if q.is_empty() {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        Box::new(BooleanQuery::new(clauses))
    }

    /// One page of the documents of the scopes' tenants matching `q`, newest first, after
    /// skipping `offset` hits. The scopes come from the guard: nothing else is searched.
    pub fn search(
        &self,
        scopes: &[TenantScope],
        q: &Query,
        limit: usize,
        offset: usize,
    ) -> Result<Results, SearchError> {
        let limit = limit.clamp(1, MAX_LIMIT);
        if scopes.is_empty() || offset >= MAX_DEPTH {
            return Ok(Results {
                hits: Vec::new(),
                total: 0,
                total_exact: true,
                next_cursor: None,
            });
        }
        let searcher = self.reader.searcher();
        let query = self.query(scopes, q);
        let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
        // Every segment is sorted newest first: its first `want` matches are its newest, so
        // each segment is read only until it gave them and the count reached its cap.
        let want = offset + limit;
        let mut top: Vec<(i64, DocAddress)> = Vec::new();
        let mut counted = 0u64;
        let mut exact = true;
        for (ord, segment) in searcher.segment_readers().iter().enumerate() {
            let ts = segment.fast_fields().i64("ts")?;
            let alive = segment.alive_bitset();
            let mut scorer = weight.scorer(segment, 1.0)?;
            let mut taken = 0;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    if taken < want {
                        top.push((
                            ts.first(doc).unwrap_or(i64::MIN),
                            DocAddress::new(ord as u32, doc),
                        ));
                        taken += 1;
                    }
                    counted += 1;
                    if taken >= want && counted >= COUNT_CAP {
                        if scorer.advance() != TERMINATED {
                            exact = false;
                        }
                        break;
                    }
                }
                doc = scorer.advance();
            }
        }
        top.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut hits = Vec::with_capacity(limit);
        for (_, address) in top.into_iter().skip(offset).take(limit) {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(hit) = self.hit(&doc) {
                hits.push(hit);
            }
        }
        let next = offset + limit;
        let more = (next as u64) < counted || !exact;
        Ok(Results {
            next_cursor: (more && next < MAX_DEPTH).then(|| next.to_string()),
            hits,
            total: counted,
            total_exact: exact,
        })
    }

    fn hit(&self, doc: &TantivyDocument) -> Option<Hit> {
        let f = &self.fields;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let at = doc
            .get_first(f.ts)
            .and_then(|v| v.as_i64())
            .and_then(|m| jiff::Timestamp::from_microsecond(m).ok())?;
        Some(Hit {
            kind: DocKind::parse(&text(f.kind)?)?,
            tenant: text(f.tenant)?,
            id: text(f.id)?,
            status: text(f.status)?,
            name: text(f.name)?,
            version: text(f.version),
            region: text(f.region),
            at: at.to_string(),
            receipt: text(f.receipt),
            summary: text(f.summary),
        })
    }

    /// Counts of the scope's tenant's documents matching `q` per time bucket: `buckets`
    /// buckets of `width` from `from`, oldest first.
    pub fn histogram(
        &self,
        scope: &TenantScope,
        q: &Query,
        from: jiff::Timestamp,
        width: jiff::SignedDuration,
        buckets: usize,
    ) -> Result<Vec<u64>, SearchError> {
        let width = u64::try_from(width.as_micros()).unwrap_or(1).max(1);
        let searcher = self.reader.searcher();
        let query = self.query(std::slice::from_ref(scope), q);
        let collector = HistogramCollector::new("ts".to_owned(), micros(from), width, buckets);
        Ok(searcher.search(&query, &collector)?)
    }
}

#[cfg(test)]
mod tests;
