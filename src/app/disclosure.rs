//! Disclosure packs: one tenant's evidence for one region as a deterministic tar.gz. One
//! pass over one store snapshot streams the region's executions (final, with a receipt,
//! read beside the record):
//! their records, decisions (deny decisions replayed and explained), receipts proved against
//! the first checkpoint that covers the newest of them (found first, walking the log back
//! from its end) and, if asked, artifact
//! bytes, into the archive while the index is written to a temporary file; then keys, pinned
//! policy bundles, the residency report and the signed index. Records are read without being
//! built (`record.rs`). Memory does not grow with the number of executions. Verification:
//! `verify.rs`.

mod record;
pub mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Seek as _, Write};

use serde::Serialize;
use serde_json::value::RawValue;

use super::App;
use crate::archive::{self, HashingWriter};
use crate::attest::dsse;
use crate::attest::keys::PublicKey;
use crate::attest::receipt::{KeyHint, MEDIA_TYPE as RECEIPT_MEDIA_TYPE};
use crate::domain::actor::TenantScope;
use crate::domain::disclosure::{
    self as layout, Explain, IndexPredicate, IndexStatement, PackCheckpoint, file,
};
use crate::domain::execution::{Decision, Execution, ExecutionStatus};
use crate::domain::ids::{Digest, ExecutionId};
use crate::domain::receipt::PAYLOAD_TYPE;
use crate::domain::residency::{Region, Rules, Violation};
use crate::policy::PolicyBundle;
use crate::store::{LogHashes, Reader, StoreError, StoredReceipt};
use crate::tlog;
use record::RawRecord;

/// Gzip level of packs: fast, and JSON still shrinks about tenfold.
const LEVEL: u32 = 1;

/// What to pack.
#[derive(Debug, Clone)]
pub struct PackRequest {
    /// The region (a declared region or an alias of one).
    pub region: String,
    /// Only this execution (the per-execution route).
    pub execution: Option<ExecutionId>,
    /// Include artifact bytes, not only their metadata.
    pub artifact_bytes: bool,
    /// Which decisions carry an explanation.
    pub explain: Explain,
}

/// What was packed.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PackInfo {
    /// SHA-256 of the tar.gz.
    pub sha256: Digest,
    /// Its size in bytes.
    pub bytes: u64,
    /// Executions packed.
    pub executions: u64,
    /// Files in the index.
    pub files: u64,
    /// The declared region packed.
    pub region: String,
}

/// Why a pack could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DisclosureError {
    /// The region is not declared.
    #[error("region {given:?} is not a declared region or alias{}", .resembles.as_ref().map(|r| format!("; did you mean {r:?}?")).unwrap_or_default())]
    UnknownRegion {
        /// What was asked.
        given: String,
        /// A declared region it resembles.
        resembles: Option<String>,
    },
    /// The execution asked for does not exist (in this tenant).
    #[error("execution {0} not found")]
    NotFound(ExecutionId),
    /// The execution is not final yet, so it has no receipt to disclose.
    #[error("execution {0} is not final yet: a pack holds receipts, and it has none")]
    NotFinal(ExecutionId),
    /// The execution neither ran in the region nor wrote there.
    #[error("execution {id} ran in {ran:?} and wrote nothing in {region:?}")]
    OutsideRegion {
        /// The execution.
        id: ExecutionId,
        /// Its region.
        ran: String,
        /// The region asked for.
        region: String,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the archive failed.
    #[error("writing the pack: {0}")]
    Archive(#[from] archive::ArchiveError),
    /// Signing the index failed.
    #[error("signing the index: {0}")]
    Sign(#[from] crate::attest::AttestError),
}

impl From<std::io::Error> for DisclosureError {
    fn from(e: std::io::Error) -> Self {
        DisclosureError::Archive(e.into())
    }
}

fn corrupt(e: impl std::fmt::Display) -> DisclosureError {
    DisclosureError::Store(StoreError::Corrupt(e.to_string()))
}

fn raw_json(value: &impl Serialize) -> Result<Box<RawValue>, DisclosureError> {
    serde_json::value::to_raw_value(value).map_err(corrupt)
}

/// How one region reads under the rules.
struct RegionFilter<'a> {
    rules: &'a Rules,
    region: String,
}

impl RegionFilter<'_> {
    fn reads_as(&self, tag: &str) -> bool {
        matches!(self.rules.region(tag), Region::Known(r) if r == self.region)
    }

    /// Whether an artifact written at `location` with tag `tag` is in the region: by the tag
    /// it was written with, or by the location's region now (re-tagged since).
    fn artifact_in(&self, location: &str, tag: &str) -> bool {
        self.reads_as(tag)
            || self
                .rules
                .locations
                .get(location)
                .is_some_and(|l| self.reads_as(&l.region))
    }

    /// Whether a run of `region` that wrote artifacts at `artifacts` (location, tag) is in
    /// the pack.
    fn includes<'b>(
        &self,
        region: &str,
        mut artifacts: impl Iterator<Item = (&'b str, &'b str)>,
    ) -> bool {
        self.reads_as(region) || artifacts.any(|(location, tag)| self.artifact_in(location, tag))
    }

    /// Whether an execution ran or wrote in the region.
    fn holds(&self, e: &Execution) -> bool {
        self.includes(
            &e.region,
            e.artifacts.iter().map(|a| (&*a.location, &*a.region)),
        )
    }

    fn names(&self) -> Vec<String> {
        let mut names = vec![self.region.clone()];
        names.extend(
            self.rules
                .aliases
                .iter()
                .filter(|(_, r)| **r == self.region)
                .map(|(a, _)| a.clone()),
        );
        names
    }
}

/// A decision as packed: as stored, with its explanation.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PackedDecision<'a> {
    decision: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<super::replay::Replay>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation_error: Option<String>,
}

/// Writes files into the archive and their lines into the index.
struct Sink<W: Write> {
    tar: archive::Writer<HashingWriter<W>>,
    index: HashingWriter<BufWriter<std::fs::File>>,
}

impl<W: Write> Sink<W> {
    fn put(&mut self, path: &str, bytes: &[u8]) -> Result<(), DisclosureError> {
        self.put_hashed(path, bytes, &Digest::of(bytes))
    }

    fn put_hashed(
        &mut self,
        path: &str,
        bytes: &[u8],
        digest: &Digest,
    ) -> Result<(), DisclosureError> {
        self.tar.add(path, bytes)?;
        self.index
            .write_all(layout::index_line(digest, path).as_bytes())?;
        Ok(())
    }

    fn put_json(&mut self, path: &str, value: &impl Serialize) -> Result<(), DisclosureError> {
        let mut bytes = serde_json::to_vec(value).map_err(corrupt)?;
        bytes.push(b'\n');
        self.put(path, &bytes)
    }
}

/// How many executions the pack holds, by status.
#[derive(Default)]
struct Census {
    executions: u64,
    by_status: BTreeMap<String, u64>,
}

/// Totals the pass gathers for the report.
#[derive(Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Tally {
    artifacts_in_region: u64,
    withheld_artifacts: u64,
    decisions: u64,
    denied_decisions: u64,
    explained_decisions: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.artifacts_in_region += o.artifacts_in_region;
        self.withheld_artifacts += o.withheld_artifacts;
        self.decisions += o.decisions;
        self.denied_decisions += o.denied_decisions;
        self.explained_decisions += o.explained_decisions;
    }
}

impl App {
    /// Writes the disclosure pack of `scope`'s tenant for `req` to `out`.
    pub fn disclosure_pack<W: Write + Send>(
        &self,
        scope: &TenantScope,
        req: &PackRequest,
        out: W,
    ) -> Result<PackInfo, DisclosureError> {
        let rules = &self.engine.config().residency;
        let region = match rules.region(&req.region) {
            Region::Known(r) => r,
            Region::Unknown { resembles } => {
                return Err(DisclosureError::UnknownRegion {
                    given: req.region.clone(),
                    resembles,
                });
            }
            Region::Missing => {
                return Err(DisclosureError::UnknownRegion {
                    given: req.region.clone(),
                    resembles: None,
                });
            }
        };
        let filter = RegionFilter { rules, region };
        let r = self.engine.store().read()?;
        // Final with a receipt, and the one asked for, if one was.
        let selected = |id: &ExecutionId, status: ExecutionStatus, sealed: bool| {
            req.execution.as_ref().is_none_or(|only| id == only) && status.is_final() && sealed
        };
        // Whether a record is in the pack: final with a receipt, and in the region.
        let in_pack = |e: &RawRecord<'_>| {
            let places = e.artifacts.iter().map(|a| (&*a.location, &*a.region));
            selected(&e.id, e.status, e.sealed) && filter.includes(&e.region, places)
        };
        // The checkpoint every receipt proves against: the first one that covers the pack's
        // newest receipt, found before the executions are read (walking the log back), so a
        // pack stays the same while its executions do.
        let last_leaf = match &req.execution {
            Some(id) => {
                self.check_one(&r, scope, id, &filter)?;
                r.receipt(scope, id)?.map(|s| s.log_index)
            }
            None => r.last_leaf_of(scope, |stored| {
                let json = stored.json()?;
                Ok(in_pack(
                    &RawRecord::parse(&json).map_err(StoreError::Corrupt)?,
                ))
            })?,
        };
        let workers = archive::threads();
        let checkpoint = match last_leaf {
            None => None,
            Some(leaf) => {
                let (_, note) = r
                    .checkpoint_at_or_after(leaf + 1)?
                    .ok_or_else(|| corrupt(format!("no checkpoint covers log leaf {leaf}")))?;
                let body = tlog::note_body(&note)
                    .ok_or_else(|| corrupt("stored checkpoint is not a note"))?;
                let cp = tlog::parse_body(body.as_bytes()).map_err(corrupt)?;
                Some((cp, note))
            }
        };
        let pack_checkpoint = checkpoint.as_ref().map(|(cp, _)| PackCheckpoint {
            origin: cp.origin.clone(),
            size: cp.size,
            root_hash: tlog::hex_hash(&cp.root),
        });

        let spool = tempfile::tempfile_in(self.engine.store().dir())?;
        let mut sink = Sink {
            tar: archive::Writer::parallel(HashingWriter::new(out), LEVEL, workers),
            index: HashingWriter::new(BufWriter::new(spool)),
        };
        let key = self.engine.signing().key_for(scope.tenant());
        let readme = readme(scope, &filter, req, pack_checkpoint.as_ref(), key.public());
        sink.put(layout::README, readme.as_bytes())?;
        if let Some((_, note)) = &checkpoint {
            sink.put(layout::CHECKPOINT, note.as_bytes())?;
        }

        // The executions.
        let known_keys: BTreeMap<String, PublicKey> = r
            .keys()?
            .into_iter()
            .filter_map(|v| {
                let key = PublicKey::from_pem(v["pem"].as_str()?).ok()?;
                Some((key.keyid().to_owned(), key))
            })
            .collect();
        let mut used_keys = BTreeSet::from([
            self.engine.signing().appliance.public().keyid().to_owned(),
            key.public().keyid().to_owned(),
        ]);
        let mut policies = BTreeSet::new();
        let mut tally = Tally::default();
        let mut census = Census::default();
        if let Some((cp, note)) = &checkpoint {
            // What every receipt repeats, encoded once.
            let hints = known_keys
                .iter()
                .map(|(id, k)| Ok((id.clone(), raw_json(&KeyHint::of(k))?)))
                .collect::<Result<BTreeMap<_, _>, DisclosureError>>()?;
            let ctx = Context {
                scope,
                filter: &filter,
                req,
                checkpoint: cp,
                root_hash: &tlog::hex_hash(&cp.root),
                note: &raw_json(note)?,
                hints: &hints,
            };
            // Workers build each execution's files; they are written in order.
            ordered_parallel(
                workers,
                |send| {
                    Ok(r.for_each_stored_execution(scope, |record, receipt| {
                        send((record, receipt))
                    })?)
                },
                |(stored, receipt)| {
                    let json = stored.json()?;
                    let e = RawRecord::parse(&json)
                        .map_err(|m| corrupt(format!("an execution record: {m}")))?;
                    if !in_pack(&e) {
                        return Ok(None);
                    }
                    READER.with(|cell| {
                        let mut cell = cell.borrow_mut();
                        if cell.is_none() {
                            let reader = self.engine.store().read()?;
                            let hashes = CachedHashes::new(reader.log_hashes()?);
                            *cell = Some((reader, tlog::Prover::new(cp.size, hashes)));
                        }
                        let (reader, prover) = cell.as_ref().expect("set above");
                        let receipt = receipt.ok_or_else(|| {
                            corrupt(format!("execution {} has no stored receipt", e.id))
                        })?;
                        self.build_execution(reader, prover, &ctx, &e, &receipt.decode()?)
                            .map(Some)
                    })
                },
                |built| {
                    if let Some(b) = built {
                        census.executions += 1;
                        *census
                            .by_status
                            .entry(b.status.as_str().into())
                            .or_default() += 1;
                        for (path, bytes, digest) in &b.files {
                            sink.put_hashed(path, bytes, digest)?;
                        }
                        policies.extend(b.policies);
                        used_keys.insert(b.keyid);
                        tally.add(&b.tally);
                    }
                    Ok(())
                },
            )?;
            READER.with(|cell| cell.borrow_mut().take());
        }

        let keys: Vec<KeyHint> = used_keys
            .iter()
            .filter_map(|k| known_keys.get(k).map(KeyHint::of))
            .collect();
        sink.put_json(layout::KEYS, &serde_json::json!({ "keys": keys }))?;
        for digest in &policies {
            if let Some(stored) = r.policy(digest)? {
                // The files that decide and the data: what the digest covers (the bundle's
                // own tests are left out).
                let bundle: PolicyBundle = serde_json::from_value(stored).map_err(corrupt)?;
                let deciding = PolicyBundle {
                    files: bundle
                        .policy_files()
                        .map(|(p, s)| (p.clone(), s.clone()))
                        .collect(),
                    data: bundle.data.clone(),
                };
                sink.put_json(&layout::policy_path(digest), &deciding)?;
            }
        }
        let report = residency_report(&r, scope, &filter, &census, &tally)?;
        sink.put_json(layout::REPORT_JSON, &report)?;
        sink.put(layout::REPORT_MD, report_markdown(&report).as_bytes())?;

        // The signed index.
        let files = sink.tar.files();
        let Sink { mut tar, index } = sink;
        let (index_buf, index_digest, index_len) = index.finish();
        let mut spool = index_buf.into_inner().map_err(|e| e.into_error())?;
        let statement = IndexStatement::new(
            &index_digest,
            IndexPredicate {
                pack_version: 1,
                tenant: scope.tenant().clone(),
                region: filter.region.clone(),
                region_names: filter.names(),
                execution: req.execution.clone(),
                checkpoint: pack_checkpoint,
                executions: census.executions,
                files,
                artifact_bytes: req.artifact_bytes,
                explanations: req.explain,
            },
        );
        let payload = serde_json::to_vec(&statement).map_err(corrupt)?;
        let envelope = dsse::sign(PAYLOAD_TYPE, &payload, key)?;
        let mut env_bytes = serde_json::to_vec_pretty(&envelope).map_err(corrupt)?;
        env_bytes.push(b'\n');
        tar.add(layout::INDEX_ENVELOPE, &env_bytes)?;
        spool.rewind()?;
        tar.add_reader(layout::INDEX, index_len, std::io::BufReader::new(spool))?;
        let (mut out, sha256, bytes) = tar.finish()?.finish();
        // Flushed here, not on drop, so a failed write is an error and not a short pack.
        out.flush()?;
        Ok(PackInfo {
            sha256,
            bytes,
            executions: census.executions,
            files,
            region: filter.region,
        })
    }

    /// Checks the one execution of a per-execution pack, with an error that says why it
    /// cannot be packed.
    fn check_one(
        &self,
        r: &Reader,
        scope: &TenantScope,
        id: &ExecutionId,
        filter: &RegionFilter<'_>,
    ) -> Result<(), DisclosureError> {
        let e = r
            .execution(scope, id)?
            .ok_or_else(|| DisclosureError::NotFound(id.clone()))?;
        if !e.status.is_final() || e.receipt.is_none() {
            return Err(DisclosureError::NotFinal(id.clone()));
        }
        if !filter.holds(&e) {
            return Err(DisclosureError::OutsideRegion {
                id: id.clone(),
                ran: e.region,
                region: filter.region.clone(),
            });
        }
        Ok(())
    }

    /// The files of one execution: decisions (explained as asked), the record with the
    /// region's artifacts, the receipt proved against the pack's checkpoint, artifact bytes.
    fn build_execution(
        &self,
        r: &Reader,
        prover: &tlog::Prover<CachedHashes>,
        ctx: &Context<'_>,
        e: &RawRecord<'_>,
        stored: &StoredReceipt,
    ) -> Result<Built, DisclosureError> {
        let (filter, scope) = (ctx.filter, ctx.scope);
        let dir = layout::execution_dir(&e.id);
        let mut b = Built::new(e.status);
        let mut because = Vec::new();
        if filter.reads_as(&e.region) {
            because.push("run_region".to_owned());
        }
        let keep: Vec<bool> = e
            .artifacts
            .iter()
            .map(|a| filter.artifact_in(&a.location, &a.region))
            .collect();
        let kept = keep.iter().filter(|k| **k).count() as u64;
        if kept > 0 {
            because.push("artifact_region".to_owned());
        }
        let withheld = e.artifacts.len() as u64 - kept;
        b.tally.artifacts_in_region += kept;
        b.tally.withheld_artifacts += withheld;

        if ctx.req.artifact_bytes {
            let digests: BTreeSet<Digest> = e
                .artifacts
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(a, _)| a.digest)
                .collect();
            for d in digests {
                if let Some(bytes) = r.artifact(scope, &d)? {
                    b.add(format!("{dir}{}{}", file::ARTIFACT_BYTES, d.hex()), bytes);
                }
            }
        }

        let mut packed = Vec::with_capacity(e.decisions.len());
        for d in &e.decisions {
            b.policies.push(d.policy_digest);
            b.tally.decisions += 1;
            if !d.allow {
                b.tally.denied_decisions += 1;
            }
            let (explanation, explanation_error) = if ctx.req.explain.wants(d.allow) {
                let decision: Decision = serde_json::from_str(d.raw.get()).map_err(corrupt)?;
                match self.replay(&decision) {
                    Ok(x) => {
                        b.tally.explained_decisions += 1;
                        (Some(x), None)
                    }
                    Err(err) => (None, Some(err.to_string())),
                }
            } else {
                (None, None)
            };
            packed.push(PackedDecision {
                decision: d.raw,
                explanation,
                explanation_error,
            });
        }
        b.add_json(format!("{dir}{}", file::DECISIONS), &packed)?;

        let cp = ctx.checkpoint;
        let proof = prover.prove(stored.log_index).map_err(corrupt)?;
        let hint = ctx
            .hints
            .get(&stored.keyid)
            .ok_or_else(|| corrupt(format!("signing key {} is unknown", stored.keyid)))?;
        b.add_json(
            format!("{dir}{}", file::EXECUTION),
            &PackedRecord {
                included_because: because,
                withheld_artifacts: withheld,
                execution: e.packed(&keep),
            },
        )?;
        let bundle = PackedReceipt {
            media_type: RECEIPT_MEDIA_TYPE,
            dsse_envelope: &stored.envelope,
            public_key: hint,
            log_entry: PackedLogEntry {
                origin: &cp.origin,
                log_index: stored.log_index,
                tree_size: cp.size,
                root_hash: ctx.root_hash,
                inclusion_proof: HexHashes(&proof),
                checkpoint: ctx.note,
            },
        };
        b.add_json(format!("{dir}{}", file::RECEIPT), &bundle)?;
        b.keyid = stored.keyid.clone();
        Ok(b)
    }
}

/// [`PackedExecution`](layout::PackedExecution) as written: the record passed through as stored (`record.rs`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PackedRecord<R: Serialize> {
    included_because: Vec<String>,
    withheld_artifacts: u64,
    execution: R,
}

/// [`ReceiptBundle`](crate::attest::receipt::ReceiptBundle) as written: the signed envelope
/// passed through as stored, not parsed and encoded again, and the key hint encoded once.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PackedReceipt<'a> {
    media_type: &'a str,
    dsse_envelope: &'a RawValue,
    public_key: &'a RawValue,
    log_entry: PackedLogEntry<'a>,
}

/// [`LogEntry`](crate::attest::receipt::LogEntry) as written: what every receipt of the pack
/// shares (origin, root, the checkpoint) borrowed or encoded once.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PackedLogEntry<'a> {
    origin: &'a str,
    log_index: u64,
    tree_size: u64,
    root_hash: &'a str,
    inclusion_proof: HexHashes<'a>,
    checkpoint: &'a RawValue,
}

/// Hashes written as a list of hex strings, without a string allocated for each.
struct HexHashes<'a>(&'a [tlog::Hash]);

impl Serialize for HexHashes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq as _};
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        let mut buf = [0u8; 64];
        for h in self.0 {
            let hex = hex::encode_to_slice(h, &mut buf)
                .ok()
                .and_then(|()| std::str::from_utf8(&buf).ok())
                .ok_or_else(|| S::Error::custom("hex encoding"))?;
            seq.serialize_element(hex)?;
        }
        seq.end()
    }
}

thread_local! {
    /// A worker's snapshot (receipts, artifacts and log hashes of final executions never
    /// change, so any snapshot taken after the pack's reads the same).
    static READER: std::cell::RefCell<Option<(Reader, tlog::Prover<CachedHashes>)>> =
        const { std::cell::RefCell::new(None) };
}

/// The log's stored hashes with the ones read last kept: executions come in log order, so
/// neighbouring inclusion proofs share most of their hashes. Direct-mapped: a stored hash's
/// index picks its slot, and a newer index taking the slot evicts the older one.
struct CachedHashes<S = LogHashes> {
    store: S,
    slots: std::cell::RefCell<Vec<Option<(u64, tlog::Hash)>>>,
}

impl<S> CachedHashes<S> {
    /// Slots (a power of two).
    const SLOTS: usize = 1 << 14;

    fn new(store: S) -> Self {
        CachedHashes {
            store,
            slots: std::cell::RefCell::new(vec![None; Self::SLOTS]),
        }
    }

    fn slot(index: u64) -> usize {
        (index as usize) & (Self::SLOTS - 1)
    }
}

impl<S: tlog::HashSource> tlog::HashSource for CachedHashes<S> {
    fn hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, String> {
        let mut slots = self.slots.borrow_mut();
        let mut found: Vec<Option<tlog::Hash>> = indexes
            .iter()
            .map(|i| match slots[Self::slot(*i)] {
                Some((at, h)) if at == *i => Some(h),
                _ => None,
            })
            .collect();
        let missing: Vec<u64> = indexes
            .iter()
            .zip(&found)
            .filter(|(_, h)| h.is_none())
            .map(|(i, _)| *i)
            .collect();
        if !missing.is_empty() {
            let mut read = self.store.hashes(&missing)?.into_iter();
            for (i, h) in indexes.iter().zip(&mut found) {
                if h.is_none() {
                    let got = read
                        .next()
                        .ok_or_else(|| format!("log hash {i} was not read"))?;
                    slots[Self::slot(*i)] = Some((*i, got));
                    *h = Some(got);
                }
            }
        }
        Ok(found.into_iter().flatten().collect())
    }
}

/// What the pass's workers share.
struct Context<'a> {
    scope: &'a TenantScope,
    filter: &'a RegionFilter<'a>,
    req: &'a PackRequest,
    checkpoint: &'a tlog::Checkpoint,
    /// The checkpoint's root hash, hex.
    root_hash: &'a str,
    /// The signed checkpoint, as a JSON string.
    note: &'a RawValue,
    /// The hint of every known key, by key id, as JSON.
    hints: &'a BTreeMap<String, Box<RawValue>>,
}

/// One execution's files, with their digests, and what the pack records about it.
struct Built {
    status: ExecutionStatus,
    files: Vec<(String, Vec<u8>, Digest)>,
    policies: Vec<Digest>,
    keyid: String,
    tally: Tally,
}

impl Built {
    fn new(status: ExecutionStatus) -> Self {
        Built {
            status,
            files: Vec::new(),
            policies: Vec::new(),
            keyid: String::new(),
            tally: Tally::default(),
        }
    }

    fn add(&mut self, path: String, bytes: Vec<u8>) {
        let digest = Digest::of(&bytes);
        self.files.push((path, bytes, digest));
    }

    fn add_json(&mut self, path: String, value: &impl Serialize) -> Result<(), DisclosureError> {
        let mut bytes = serde_json::to_vec(value).map_err(corrupt)?;
        bytes.push(b'\n');
        self.add(path, bytes);
        Ok(())
    }
}

/// Runs `work` on every item `feed` hands out, on `workers` threads, and gives the results
/// to `sink` in the order they were fed, on a thread of its own. The first error stops
/// everything and is returned.
fn ordered_parallel<T: Send, R: Send>(
    workers: usize,
    feed: impl FnOnce(&mut dyn FnMut(T) -> bool) -> Result<(), DisclosureError>,
    work: impl Fn(T) -> Result<R, DisclosureError> + Sync,
    mut sink: impl FnMut(R) -> Result<(), DisclosureError> + Send,
) -> Result<(), DisclosureError> {
    let (items_tx, items_rx) = crossbeam_channel::bounded::<(u64, T)>(workers * 32);
    let (done_tx, done_rx) =
        crossbeam_channel::bounded::<(u64, Result<R, DisclosureError>)>(workers * 32);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (items_rx, done_tx, work) = (items_rx.clone(), done_tx.clone(), &work);
            s.spawn(move || {
                for (seq, item) in items_rx {
                    if done_tx.send((seq, work(item))).is_err() {
                        return;
                    }
                }
            });
        }
        drop((items_rx, done_tx));
        let writer = s.spawn(move || {
            let mut pending = BTreeMap::new();
            let mut next = 0u64;
            for (seq, result) in done_rx {
                pending.insert(seq, result);
                while let Some(result) = pending.remove(&next) {
                    sink(result?)?;
                    next += 1;
                }
            }
            Ok::<_, DisclosureError>(())
        });
        let mut seq = 0u64;
        let fed = feed(&mut |item| {
            let sent = items_tx.send((seq, item)).is_ok();
            seq += 1;
            sent
        });
        drop(items_tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(corrupt("a pack writer thread panicked")));
        written.and(fed)
    })
}

/// The residency report of a pack.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    tenant: String,
    region: String,
    region_names: Vec<String>,
    tenant_allowed_regions: Vec<String>,
    locations_in_region: BTreeMap<String, Vec<String>>,
    executions: u64,
    executions_by_status: BTreeMap<String, u64>,
    #[serde(flatten)]
    tally: Tally,
    open_violations: u64,
    resolved_violations: u64,
    violations: Vec<Violation>,
}

fn residency_report(
    r: &Reader,
    scope: &TenantScope,
    filter: &RegionFilter<'_>,
    census: &Census,
    tally: &Tally,
) -> Result<Report, DisclosureError> {
    // A violation belongs here when its finding is about this region, or its execution is
    // in the pack.
    let mut violations = Vec::new();
    for v in r.violations(scope, false)? {
        let about_region = filter.reads_as(&v.finding.region);
        let in_pack = about_region
            || r.execution(scope, &v.execution)?
                .is_some_and(|e| filter.holds(&e));
        if in_pack {
            violations.push(v);
        }
    }
    violations.sort_by(|a, b| (a.log_index, &a.id).cmp(&(b.log_index, &b.id)));
    let rules = filter.rules;
    Ok(Report {
        tenant: scope.tenant().to_string(),
        region: filter.region.clone(),
        region_names: filter.names(),
        tenant_allowed_regions: rules
            .tenants
            .get(scope.tenant().as_str())
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default(),
        locations_in_region: rules
            .locations
            .iter()
            .filter(|(_, l)| filter.reads_as(&l.region))
            .map(|(name, l)| (name.clone(), l.replicas.clone()))
            .collect(),
        executions: census.executions,
        executions_by_status: census.by_status.clone(),
        tally: tally.clone(),
        open_violations: violations.iter().filter(|v| v.is_open()).count() as u64,
        resolved_violations: violations.iter().filter(|v| !v.is_open()).count() as u64,
        violations,
    })
}

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn report_markdown(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "# Residency report: {} in {}\n", r.tenant, r.region);
    let _ = writeln!(
        s,
        "Names of the region: {}. The tenant may keep data in: {}.\n",
        r.region_names.join(", "),
        if r.tenant_allowed_regions.is_empty() {
            "every region".to_owned()
        } else {
            r.tenant_allowed_regions.join(", ")
        }
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| executions | {} |", r.executions);
    for (status, n) in &r.executions_by_status {
        let _ = writeln!(s, "| {status} | {n} |");
    }
    let _ = writeln!(
        s,
        "| artifacts in the region | {} |",
        r.tally.artifacts_in_region
    );
    let _ = writeln!(
        s,
        "| artifacts withheld (written elsewhere) | {} |",
        r.tally.withheld_artifacts
    );
    let _ = writeln!(
        s,
        "| decisions (denied, explained) | {} ({}, {}) |",
        r.tally.decisions, r.tally.denied_decisions, r.tally.explained_decisions
    );
    let _ = writeln!(s, "| open violations | {} |", r.open_violations);
    let _ = writeln!(s, "| resolved violations | {} |\n", r.resolved_violations);
    let _ = writeln!(s, "## Storage locations in the region\n");
    if r.locations_in_region.is_empty() {
        let _ = writeln!(s, "None declared.\n");
    } else {
        let _ = writeln!(s, "| location | replicas |\n|---|---|");
        for (name, replicas) in &r.locations_in_region {
            let _ = writeln!(
                s,
                "| {} | {} |",
                md_cell(name),
                md_cell(&replicas.join(", "))
            );
        }
        s.push('\n');
    }
    let _ = writeln!(s, "## Violations\n");
    if r.violations.is_empty() {
        let _ = writeln!(
            s,
            "The residency auditor recorded no violation for these executions."
        );
    } else {
        let _ = writeln!(
            s,
            "| id | execution | code | region | location | state | message |\n|---|---|---|---|---|---|---|"
        );
        for v in &r.violations {
            let state = match &v.resolved {
                None => "open".to_owned(),
                Some(res) => format!("resolved by {}: {}", res.by, res.reason),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                v.id,
                v.execution,
                v.finding.code,
                md_cell(&v.finding.region),
                md_cell(v.finding.location.as_deref().unwrap_or("")),
                md_cell(&state),
                md_cell(&v.finding.message)
            );
        }
    }
    s
}

fn readme(
    scope: &TenantScope,
    filter: &RegionFilter<'_>,
    req: &PackRequest,
    checkpoint: Option<&PackCheckpoint>,
    key: &PublicKey,
) -> String {
    let what = match &req.execution {
        Some(id) => format!("execution {id} of tenant {}", scope.tenant()),
        None => format!("every final execution of tenant {}", scope.tenant()),
    };
    let cp = match checkpoint {
        Some(cp) => format!(
            "Every receipt proves its inclusion against the checkpoint in `checkpoint.txt`: log\n`{}`, tree size {}, root hash `{}`.",
            cp.origin, cp.size, cp.root_hash
        ),
        None => "The pack holds no execution, so no checkpoint.".to_owned(),
    };
    format!(
        "# Disclosure pack: {tenant} in {region}\n\n\
         This pack holds {what} that ran in region `{region}` or wrote an artifact there\n\
         (how many: `residency-report.md`). Each has its record and manifest (`execution.json`, with only the\n\
         artifacts of this region), its policy decisions with their inputs ({explain})\n\
         (`decisions.json`), and its signed receipt with an inclusion proof\n\
         (`receipt.json`){bytes}.\n\n\
         {cp}\n\n\
         `residency-report.md` and `residency-report.json` report the residency auditor's\n\
         findings for these executions; `policies/` holds every policy bundle a decision\n\
         pinned; `keys.json` the public keys that signed (hints only: get the keys you trust\n\
         from the appliance's operator, e.g. `maestro keys show --pem`).\n\n\
         `../index.sha256` lists every file of `data/` with its SHA-256, and\n\
         `../index.dsse.json` is a DSSE envelope, signed by key `{keyid}`, whose in-toto\n\
         Statement names the index by digest.\n\n\
         To check everything: `maestro disclosure verify PACK.tar.gz --key KEY.pem`. With\n\
         public tools only: `scripts/verify-disclosure-without-maestro PACK.tar.gz KEY.pem`\n\
         (docs/disclosure.md shows each step: `sha256sum -c`, openssl, python3).\n",
        tenant = scope.tenant(),
        region = filter.region,
        explain = match req.explain {
            Explain::Denies => "deny decisions replayed and explained rule by rule",
            Explain::All => "every decision replayed and explained rule by rule",
        },
        bytes = if req.artifact_bytes {
            ", and the bytes of its artifacts in this region (`artifacts/`)"
        } else {
            ""
        },
        keyid = key.keyid(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::HashSource;

    /// Hash `i` is `i` in every byte; counts what is read.
    struct Counting(std::cell::Cell<usize>);

    impl HashSource for Counting {
        fn hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, String> {
            self.0.set(self.0.get() + indexes.len());
            Ok(indexes.iter().map(|i| [*i as u8; 32]).collect())
        }
    }

    #[test]
    fn cached_hashes_answer_like_the_source_with_colliding_slots() {
        let cache = CachedHashes::new(Counting(Default::default()));
        let slots = CachedHashes::<Counting>::SLOTS as u64;
        let want = |ix: &[u64]| ix.iter().map(|i| [*i as u8; 32]).collect::<Vec<_>>();
        for ix in [
            &[1, 2, 3][..],
            &[1, 2, 3],
            // 1 cached, 1 + SLOTS evicts it within the same request, then both again.
            &[1, 1 + slots, 2],
            &[1 + slots, 1, 1 + 2 * slots, 1],
            &[],
        ] {
            assert_eq!(cache.hashes(ix).unwrap(), want(ix), "{ix:?}");
        }
        // Repeats are not read again.
        let before = cache.store.0.get();
        cache.hashes(&[2, 2, 2]).unwrap();
        assert_eq!(cache.store.0.get(), before);
    }
}
