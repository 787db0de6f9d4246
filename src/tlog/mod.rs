//! The transparency log's math and formats: RFC 6962/9162 Merkle hashing, stored-hash
//! layout, inclusion and consistency proofs, and checkpoints in the C2SP tlog-checkpoint /
//! signed-note text format. Pure: hashes come from a [`HashSource`] (the store), keys from
//! [`NoteSigner`]/[`NoteVerifier`] implementations (the attest module).
//!
//! Only this module imports `tlog_tiles` and `signed_note`.

mod memory;

pub use memory::MemoryLog;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest as _, Sha256};

/// A node or leaf hash.
pub type Hash = [u8; 32];

/// Longest proof accepted: a tree of 2^64 leaves needs at most 64 hashes (128 for
/// consistency).
pub const MAX_PROOF_HASHES: usize = 128;

/// What went wrong with the log.
#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    /// A proof did not verify.
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    /// The arguments do not describe a valid request (index beyond size, …).
    #[error("invalid request: {0}")]
    InvalidInput(String),
    /// Reading stored hashes failed.
    #[error("reading log hashes: {0}")]
    Read(String),
    /// A checkpoint is malformed.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    /// A checkpoint's signature did not verify or was not made by the expected key.
    #[error("checkpoint signature: {0}")]
    Signature(String),
}

/// Reads stored hashes by their stored-hash index (the store implements this).
pub trait HashSource {
    /// Returns one hash per index, in order, or an error.
    fn hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, String>;
}

impl<T: HashSource + ?Sized> HashSource for &T {
    fn hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, String> {
        (**self).hashes(indexes)
    }
}

struct Reader<'a>(&'a dyn HashSource);

impl tlog_tiles::HashReader for Reader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        let hashes = self
            .0
            .hashes(indexes)
            .map_err(tlog_tiles::Error::InvalidInput)?;
        if hashes.len() != indexes.len() {
            return Err(tlog_tiles::Error::InvalidInput(format!(
                "hash source returned {} hashes for {} indexes",
                hashes.len(),
                indexes.len()
            )));
        }
        Ok(hashes.into_iter().map(tlog_tiles::Hash).collect())
    }
}

fn read_err(e: tlog_tiles::Error) -> TlogError {
    TlogError::Read(e.to_string())
}

/// RFC 6962 leaf hash: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    tlog_tiles::record_hash(data).0
}

/// The stored-hash index of the first hash stored when leaf `n` is appended.
pub fn first_stored_index(n: u64) -> u64 {
    tlog_tiles::stored_hash_index(0, n)
}

/// The hashes to store, starting at [`first_stored_index`]`(n)`, when leaf `n` (with the
/// given leaf hash) is appended to a tree of size `n`.
pub fn hashes_to_store(
    n: u64,
    leaf: Hash,
    source: &dyn HashSource,
) -> Result<Vec<Hash>, TlogError> {
    tlog_tiles::stored_hashes_for_record_hash(n, tlog_tiles::Hash(leaf), &Reader(source))
        .map(|v| v.into_iter().map(|h| h.0).collect())
        .map_err(read_err)
}

/// The root hash of the tree of `size` leaves.
pub fn root(size: u64, source: &dyn HashSource) -> Result<Hash, TlogError> {
    tlog_tiles::tree_hash(size, &Reader(source))
        .map(|h| h.0)
        .map_err(read_err)
}

/// The proof that leaf `index` is in the tree of `size` leaves.
pub fn inclusion_proof(
    size: u64,
    index: u64,
    source: &dyn HashSource,
) -> Result<Vec<Hash>, TlogError> {
    if index >= size {
        return Err(TlogError::InvalidInput(format!(
            "leaf {index} is not in a tree of size {size}"
        )));
    }
    tlog_tiles::prove_record(size, index, &Reader(source))
        .map(|v| v.into_iter().map(|h| h.0).collect())
        .map_err(read_err)
}

/// Inclusion proofs for many leaves of one tree, the same as [`inclusion_proof`] makes
/// them: the hashes of the right edge's incomplete subtrees, which are not stored and are
/// the same for every leaf, are computed once, and each proof reads its stored hashes in one
/// request.
pub struct Prover<S> {
    size: u64,
    source: S,
    edge: std::cell::RefCell<Vec<((u64, u64), Hash)>>,
}

impl<S: HashSource> Prover<S> {
    /// A prover for the tree of `size` leaves.
    pub fn new(size: u64, source: S) -> Self {
        Prover {
            size,
            source,
            edge: Default::default(),
        }
    }

    /// The proof that leaf `index` is in the tree, leaf to root.
    pub fn prove(&self, index: u64) -> Result<Vec<Hash>, TlogError> {
        if index >= self.size {
            return Err(TlogError::InvalidInput(format!(
                "leaf {index} is not in a tree of size {}",
                self.size
            )));
        }
        // The siblings of the path from the root down to the leaf (RFC 6962 2.1.1).
        let mut siblings = Vec::with_capacity(64);
        let (mut lo, mut hi) = (0, self.size);
        while hi - lo > 1 {
            let k = split(hi - lo);
            if index < lo + k {
                siblings.push((lo + k, hi));
                hi = lo + k;
            } else {
                siblings.push((lo, lo + k));
                lo += k;
            }
        }
        let stored_at: Vec<Option<u64>> = siblings
            .iter()
            .map(|&(lo, hi)| stored_index(lo, hi))
            .collect();
        let stored: Vec<u64> = stored_at.iter().flatten().copied().collect();
        let read = self.source.hashes(&stored).map_err(TlogError::Read)?;
        if read.len() != stored.len() {
            return Err(TlogError::Read(format!(
                "hash source returned {} hashes for {} indexes",
                read.len(),
                stored.len()
            )));
        }
        let mut read = read.into_iter();
        let mut proof = Vec::with_capacity(siblings.len());
        for (&(lo, hi), at) in siblings.iter().zip(&stored_at) {
            proof.push(match at {
                Some(_) => read.next().expect("one per stored sibling"),
                None => self.edge_hash(lo, hi)?,
            });
        }
        proof.reverse();
        Ok(proof)
    }

    /// The hash of the leaves `[lo, hi)`, an incomplete subtree on the right edge.
    fn edge_hash(&self, lo: u64, hi: u64) -> Result<Hash, TlogError> {
        if let Some(i) = stored_index(lo, hi) {
            let h = self.source.hashes(&[i]).map_err(TlogError::Read)?;
            return h
                .first()
                .copied()
                .ok_or_else(|| TlogError::Read(format!("stored hash {i} was not read")));
        }
        if let Some((_, h)) = self.edge.borrow().iter().find(|(r, _)| *r == (lo, hi)) {
            return Ok(*h);
        }
        let k = split(hi - lo);
        let h = tlog_tiles::node_hash(
            tlog_tiles::Hash(self.edge_hash(lo, lo + k)?),
            tlog_tiles::Hash(self.edge_hash(lo + k, hi)?),
        )
        .0;
        self.edge.borrow_mut().push(((lo, hi), h));
        Ok(h)
    }
}

/// The largest power of two below `n` (n > 1): where RFC 6962 splits a tree of n leaves.
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The stored-hash index of the subtree `[lo, hi)` if it is stored: a complete subtree
/// aligned on its size.
fn stored_index(lo: u64, hi: u64) -> Option<u64> {
    let n = hi - lo;
    (n.is_power_of_two() && lo.is_multiple_of(n))
        .then(|| tlog_tiles::stored_hash_index(n.trailing_zeros() as u8, lo >> n.trailing_zeros()))
}

/// Checks an inclusion proof.
pub fn verify_inclusion(
    proof: &[Hash],
    size: u64,
    root: Hash,
    index: u64,
    leaf: Hash,
) -> Result<(), TlogError> {
    if proof.len() > MAX_PROOF_HASHES {
        return Err(TlogError::InvalidProof(format!(
            "{} hashes is too long",
            proof.len()
        )));
    }
    if index >= size {
        return Err(TlogError::InvalidProof(format!(
            "leaf index {index} is not below tree size {size}"
        )));
    }
    let p: Vec<tlog_tiles::Hash> = proof.iter().map(|h| tlog_tiles::Hash(*h)).collect();
    tlog_tiles::check_record(
        &p,
        size,
        tlog_tiles::Hash(root),
        index,
        tlog_tiles::Hash(leaf),
    )
    .map_err(|e| {
        TlogError::InvalidProof(format!(
            "inclusion of leaf {index} in tree of size {size}: {e}"
        ))
    })
}

/// The proof that the tree of `old_size` leaves is a prefix of the tree of `new_size`.
pub fn consistency_proof(
    old_size: u64,
    new_size: u64,
    source: &dyn HashSource,
) -> Result<Vec<Hash>, TlogError> {
    if old_size == 0 || old_size > new_size {
        return Err(TlogError::InvalidInput(format!(
            "no consistency proof from size {old_size} to size {new_size}: need 1 <= from <= to"
        )));
    }
    tlog_tiles::prove_tree(new_size, old_size, &Reader(source))
        .map(|v| v.into_iter().map(|h| h.0).collect())
        .map_err(read_err)
}

/// Checks a consistency proof.
pub fn verify_consistency(
    proof: &[Hash],
    old_size: u64,
    old_root: Hash,
    new_size: u64,
    new_root: Hash,
) -> Result<(), TlogError> {
    if proof.len() > MAX_PROOF_HASHES {
        return Err(TlogError::InvalidProof(format!(
            "{} hashes is too long",
            proof.len()
        )));
    }
    if old_size == 0 || old_size > new_size {
        return Err(TlogError::InvalidProof(format!(
            "sizes {old_size} -> {new_size} are not a valid pair"
        )));
    }
    let p: Vec<tlog_tiles::Hash> = proof.iter().map(|h| tlog_tiles::Hash(*h)).collect();
    tlog_tiles::check_tree(
        &p,
        new_size,
        tlog_tiles::Hash(new_root),
        old_size,
        tlog_tiles::Hash(old_root),
    )
    .map_err(|e| TlogError::InvalidProof(format!("consistency {old_size} -> {new_size}: {e}")))
}

/// A checkpoint: the log's origin, size and root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line, unique per log.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Root hash of the tree of `size` leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint text (the signed body of the note).
    pub fn body(&self) -> Result<Vec<u8>, TlogError> {
        tlog_tiles::Checkpoint::new(&self.origin, self.size, tlog_tiles::Hash(self.root), "")
            .map(|c| c.to_bytes())
            .map_err(|_| {
                TlogError::MalformedCheckpoint(format!("origin {:?} is not allowed", self.origin))
            })
    }
}

/// A key that signs checkpoints.
pub trait NoteSigner {
    /// Key name; by convention the log origin.
    fn key_name(&self) -> &str;
    /// 32-bit key id (see [`ed25519_note_key_id`], [`ecdsa_note_key_id`]).
    fn note_key_id(&self) -> u32;
    /// Signs the note text.
    fn sign_note(&self, text: &[u8]) -> Result<Vec<u8>, String>;
}

/// A key that verifies checkpoint signatures.
pub trait NoteVerifier {
    /// Key name.
    fn key_name(&self) -> &str;
    /// 32-bit key id.
    fn note_key_id(&self) -> u32;
    /// Whether `sig` is a valid signature of `text`.
    fn verify_note(&self, text: &[u8], sig: &[u8]) -> bool;
}

struct SignerAdapter<'a> {
    inner: &'a dyn NoteSigner,
}

impl signed_note::Signer for SignerAdapter<'_> {
    fn name(&self) -> &str {
        self.inner.key_name()
    }
    fn key_id(&self) -> u32 {
        self.inner.note_key_id()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        self.inner
            .sign_note(msg)
            .map_err(|_| signature::Error::new())
    }
}

struct VerifierAdapter<'a> {
    inner: &'a dyn NoteVerifier,
}

impl signed_note::Verifier for VerifierAdapter<'_> {
    fn name(&self) -> &str {
        self.inner.key_name()
    }
    fn key_id(&self) -> u32 {
        self.inner.note_key_id()
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.inner.verify_note(msg, sig)
    }
}

struct OneVerifier<'a>(VerifierAdapter<'a>);

impl signed_note::Verifiers for OneVerifier<'_> {
    fn verifier(
        &self,
        name: &str,
        id: u32,
    ) -> Result<&dyn signed_note::Verifier, signed_note::VerificationError> {
        use signed_note::Verifier as _;
        if self.0.name() == name && self.0.key_id() == id {
            Ok(&self.0)
        } else {
            Err(signed_note::VerificationError::UnknownKey {
                name: name.to_owned(),
                id,
            })
        }
    }
}

/// Signs a checkpoint, returning the signed note text.
pub fn sign_checkpoint(cp: &Checkpoint, signer: &dyn NoteSigner) -> Result<String, TlogError> {
    let mut note = signed_note::Note::new(&cp.body()?, &[])
        .map_err(|e| TlogError::MalformedCheckpoint(e.to_string()))?;
    note.add_sigs(&[&SignerAdapter { inner: signer }])
        .map_err(|e| TlogError::Signature(format!("signing failed: {e}")))?;
    String::from_utf8(note.to_bytes()).map_err(|e| TlogError::MalformedCheckpoint(e.to_string()))
}

/// Verifies a signed checkpoint note with one trusted key and parses it.
pub fn open_checkpoint(text: &str, verifier: &dyn NoteVerifier) -> Result<Checkpoint, TlogError> {
    let note = signed_note::Note::from_bytes(text.as_bytes())
        .map_err(|e| TlogError::MalformedCheckpoint(format!("not a signed note: {e}")))?;
    let known = OneVerifier(VerifierAdapter { inner: verifier });
    note.verify(&known).map_err(|e| match e {
        signed_note::NoteError::UnverifiedNote => TlogError::Signature(format!(
            "no signature by the trusted key {:?} (id {:08x})",
            verifier.key_name(),
            verifier.note_key_id()
        )),
        other => TlogError::Signature(other.to_string()),
    })?;
    parse_body(note.text())
}

/// Parses a checkpoint body without checking any signature.
pub fn parse_body(body: &[u8]) -> Result<Checkpoint, TlogError> {
    let cp = tlog_tiles::Checkpoint::from_bytes(body).map_err(|_| {
        TlogError::MalformedCheckpoint("expected origin, size and base64 root hash lines".into())
    })?;
    Ok(Checkpoint {
        origin: cp.origin().to_owned(),
        size: cp.size(),
        root: cp.hash().0,
    })
}

/// Splits a signed note into its body text (everything before the blank line).
pub fn note_body(text: &str) -> Option<&str> {
    text.rfind("\n\n").map(|i| &text[..=i])
}

/// C2SP signed-note key id of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4].
pub fn ed25519_note_key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut key = Vec::with_capacity(33);
    key.push(0x01);
    key.extend_from_slice(public);
    signed_note::key_id(name, &key)
}

/// Key id of an ECDSA P-256 key as used in Sigstore checkpoints: SHA-256(SPKI DER)[:4].
pub fn ecdsa_note_key_id(spki_der: &[u8]) -> u32 {
    let d = Sha256::digest(spki_der);
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The verifier key string other signed-note tools accept for an Ed25519 key:
/// `<name>+<hex id>+<base64(0x01 || key)>`.
pub fn ed25519_verifier_key(name: &str, public: &[u8; 32]) -> String {
    let mut key = vec![0x01];
    key.extend_from_slice(public);
    format!(
        "{name}+{:08x}+{}",
        ed25519_note_key_id(name, public),
        B64.encode(key)
    )
}

/// Hex of a hash.
pub fn hex_hash(h: &Hash) -> String {
    hex::encode(h)
}

/// Parses a hex hash.
pub fn parse_hex_hash(text: &str) -> Result<Hash, TlogError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| TlogError::InvalidInput(format!("{text:?} is not a 64-digit hex hash")))?;
    Ok(out)
}

#[cfg(test)]
mod tests;
