//! Evidence served from the store: receipt files with fresh inclusion proofs, checkpoints,
//! inclusion and consistency proofs, Sigstore bundles.

use serde::Serialize;

use super::{Engine, EngineError};
use crate::attest::bundle::sigstore_bundle;
use crate::attest::dsse::Envelope;
use crate::attest::keys::PublicKey;
use crate::attest::receipt::{KeyHint, LogEntry, MEDIA_TYPE, ReceiptBundle};
use crate::domain::actor::TenantScope;
use crate::domain::ids::{Digest, ExecutionId};
use crate::store::Store;
use crate::store::{Reader, StoreError, StoredReceipt};
use crate::tlog;

/// A signed checkpoint.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CheckpointView {
    /// Log origin.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash, hex.
    pub root_hash: String,
    /// The signed note text.
    pub note: String,
}

/// An inclusion proof for one receipt.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct InclusionProof {
    /// Execution the receipt belongs to.
    pub execution_id: String,
    /// Leaf index.
    pub log_index: u64,
    /// Leaf hash (RFC 6962, of the Statement payload), hex.
    pub leaf_hash: String,
    /// Tree size proven against.
    pub tree_size: u64,
    /// Root hash of that tree, hex.
    pub root_hash: String,
    /// Proof hashes, hex.
    pub hashes: Vec<String>,
    /// Signed checkpoint of that tree size.
    pub checkpoint: String,
}

/// A consistency proof between two tree sizes.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConsistencyProof {
    /// Older size.
    pub from: u64,
    /// Newer size.
    pub to: u64,
    /// Root of the older tree, hex.
    pub from_root: String,
    /// Root of the newer tree, hex.
    pub to_root: String,
    /// Proof hashes, hex.
    pub hashes: Vec<String>,
}

fn corrupt(e: impl std::fmt::Display) -> EngineError {
    EngineError::Store(StoreError::Corrupt(e.to_string()))
}

/// Evidence of one store and log: works on a running engine's store or on a data
/// directory opened by the CLI.
pub struct Evidence<'a> {
    store: &'a Store,
    origin: &'a str,
}

impl Engine {
    /// Evidence of this engine's store.
    pub fn evidence(&self) -> Evidence<'_> {
        Evidence {
            store: self.store(),
            origin: &self.signing().origin,
        }
    }
}

impl<'a> Evidence<'a> {
    /// Evidence of a store whose log has `origin`.
    pub fn new(store: &'a Store, origin: &'a str) -> Self {
        Evidence { store, origin }
    }

    fn store(&self) -> &Store {
        self.store
    }

    /// A public key that signed receipts or checkpoints, by key id (every signing key is
    /// recorded in the store when the appliance starts).
    pub fn public_key(&self, keyid: &str) -> Option<PublicKey> {
        self.store
            .read()
            .ok()?
            .keys()
            .ok()?
            .into_iter()
            .find_map(|v| {
                (v["keyid"] == keyid).then(|| PublicKey::from_pem(v["pem"].as_str()?).ok())?
            })
    }

    fn checkpoint_at_or_after(
        &self,
        r: &Reader,
        size: u64,
    ) -> Result<(tlog::Checkpoint, String), EngineError> {
        let (_, note) = r
            .checkpoint_at_or_after(size)?
            .ok_or_else(|| corrupt(format!("no checkpoint covers tree size {size}")))?;
        let body =
            tlog::note_body(&note).ok_or_else(|| corrupt("stored checkpoint is not a note"))?;
        let cp = tlog::parse_body(body.as_bytes()).map_err(corrupt)?;
        Ok((cp, note))
    }

    /// The latest signed checkpoint, if any receipt was logged.
    pub fn latest_checkpoint(&self) -> Result<Option<CheckpointView>, EngineError> {
        let r = self.store().read()?;
        let Some((_, note)) = r.latest_checkpoint()? else {
            return Ok(None);
        };
        let body =
            tlog::note_body(&note).ok_or_else(|| corrupt("stored checkpoint is not a note"))?;
        let cp = tlog::parse_body(body.as_bytes()).map_err(corrupt)?;
        Ok(Some(CheckpointView {
            origin: cp.origin,
            size: cp.size,
            root_hash: tlog::hex_hash(&cp.root),
            note,
        }))
    }

    /// The stored receipt of an execution.
    pub fn stored_receipt(
        &self,
        scope: &TenantScope,
        id: &ExecutionId,
    ) -> Result<Option<StoredReceipt>, EngineError> {
        Ok(self.store().read()?.receipt(scope, id)?)
    }

    /// The execution id of a receipt digest.
    pub fn receipt_by_digest(
        &self,
        scope: &TenantScope,
        digest: &Digest,
    ) -> Result<Option<ExecutionId>, EngineError> {
        Ok(self
            .store()
            .read()?
            .receipt_by_digest(scope, digest)?
            .map(|(id, _)| id))
    }

    /// The inclusion proof of an execution's receipt against the checkpoint of `tree_size`
    /// (or the latest one).
    pub fn inclusion_proof(
        &self,
        scope: &TenantScope,
        id: &ExecutionId,
        tree_size: Option<u64>,
    ) -> Result<Option<InclusionProof>, EngineError> {
        let r = self.store().read()?;
        let Some(stored) = r.receipt(scope, id)? else {
            return Ok(None);
        };
        let size = match tree_size {
            Some(s) if s <= stored.log_index => {
                return Err(EngineError::Invalid(format!(
                    "tree size {s} does not contain leaf {}; ask for a size above it",
                    stored.log_index
                )));
            }
            Some(s) => s,
            None => r.log_size()?,
        };
        let (cp, note) = self.checkpoint_at_or_after(&r, size)?;
        if tree_size.is_some_and(|s| s != cp.size) {
            return Err(EngineError::Invalid(format!(
                "no checkpoint was signed at tree size {size}; the next is {}",
                cp.size
            )));
        }
        let hashes =
            tlog::inclusion_proof(cp.size, stored.log_index, &r.log_hashes()?).map_err(corrupt)?;
        let envelope: Envelope = serde_json::from_str(stored.envelope.get()).map_err(corrupt)?;
        let payload = envelope.payload_bytes().map_err(corrupt)?;
        Ok(Some(InclusionProof {
            execution_id: id.to_string(),
            log_index: stored.log_index,
            leaf_hash: tlog::hex_hash(&tlog::leaf_hash(&payload)),
            tree_size: cp.size,
            root_hash: tlog::hex_hash(&cp.root),
            hashes: hashes.iter().map(tlog::hex_hash).collect(),
            checkpoint: note,
        }))
    }

    /// The consistency proof between two signed tree sizes.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<ConsistencyProof, EngineError> {
        let r = self.store().read()?;
        let size = r.log_size()?;
        if from == 0 || from > to || to > size {
            return Err(EngineError::Invalid(format!(
                "need 1 <= from <= to <= {size} (the log size); got from={from} to={to}"
            )));
        }
        let hashes = r.log_hashes()?;
        let proof = tlog::consistency_proof(from, to, &hashes).map_err(corrupt)?;
        Ok(ConsistencyProof {
            from,
            to,
            from_root: tlog::hex_hash(&tlog::root(from, &hashes).map_err(corrupt)?),
            to_root: tlog::hex_hash(&tlog::root(to, &hashes).map_err(corrupt)?),
            hashes: proof.iter().map(tlog::hex_hash).collect(),
        })
    }

    /// The receipt file of an execution, with an inclusion proof against the latest
    /// checkpoint.
    pub fn receipt_bundle(
        &self,
        scope: &TenantScope,
        id: &ExecutionId,
    ) -> Result<Option<ReceiptBundle>, EngineError> {
        let Some(stored) = self.stored_receipt(scope, id)? else {
            return Ok(None);
        };
        let Some(proof) = self.inclusion_proof(scope, id, None)? else {
            return Ok(None);
        };
        let envelope: Envelope = serde_json::from_str(stored.envelope.get()).map_err(corrupt)?;
        let key = self
            .public_key(&stored.keyid)
            .ok_or_else(|| corrupt(format!("signing key {} is unknown", stored.keyid)))?;
        Ok(Some(ReceiptBundle {
            media_type: MEDIA_TYPE.into(),
            dsse_envelope: envelope,
            public_key: KeyHint::of(&key),
            log_entry: LogEntry {
                origin: self.origin.to_owned(),
                log_index: proof.log_index,
                tree_size: proof.tree_size,
                root_hash: proof.root_hash,
                inclusion_proof: proof.hashes,
                checkpoint: proof.checkpoint,
            },
        }))
    }

    /// The receipt as a Sigstore bundle v0.3.
    pub fn sigstore_bundle(
        &self,
        scope: &TenantScope,
        id: &ExecutionId,
    ) -> Result<Option<serde_json::Value>, EngineError> {
        let Some(stored) = self.stored_receipt(scope, id)? else {
            return Ok(None);
        };
        let envelope: Envelope = serde_json::from_str(stored.envelope.get()).map_err(corrupt)?;
        sigstore_bundle(&envelope).map(Some).map_err(corrupt)
    }
}
