//! Tests of the log math against an independent RFC 6962 implementation, and of the
//! checkpoint note format.

use super::*;

/// RFC 6962 section 2.1 Merkle Tree Hash, written from the RFC.
fn reference_root(leaves: &[Vec<u8>]) -> Hash {
    fn mth(leaves: &[Vec<u8>]) -> Hash {
        match leaves.len() {
            0 => Sha256::digest(b"").into(),
            1 => {
                let mut h = Sha256::new();
                h.update([0u8]);
                h.update(&leaves[0]);
                h.finalize().into()
            }
            n => {
                let k = n.next_power_of_two() / 2;
                let mut h = Sha256::new();
                h.update([1u8]);
                h.update(mth(&leaves[..k]));
                h.update(mth(&leaves[k..]));
                h.finalize().into()
            }
        }
    }
    mth(leaves)
}

fn leaves(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("leaf {i}").into_bytes()).collect()
}

/// A log holding `leaves`.
fn log_of(leaves: &[Vec<u8>]) -> MemoryLog {
    let mut mem = MemoryLog::default();
    for leaf in leaves {
        mem.append(leaf).unwrap();
    }
    mem
}

#[test]
fn roots_match_the_rfc_definition() {
    let all = leaves(70);
    let mut mem = MemoryLog::default();
    assert_eq!(root(0, &mem).unwrap(), reference_root(&[]));
    for (i, leaf) in all.iter().enumerate() {
        mem.append(leaf).unwrap();
        assert_eq!(
            root(i as u64 + 1, &mem).unwrap(),
            reference_root(&all[..=i]),
            "size {}",
            i + 1
        );
    }
}

#[test]
fn inclusion_proofs_verify_and_catch_tampering() {
    let all = leaves(37);
    let mem = log_of(&all);
    for size in [1u64, 2, 5, 16, 37] {
        let r = root(size, &mem).unwrap();
        for index in 0..size {
            let proof = inclusion_proof(size, index, &mem).unwrap();
            let leaf = leaf_hash(&all[index as usize]);
            verify_inclusion(&proof, size, r, index, leaf).unwrap();
            assert!(verify_inclusion(&proof, size, r, index, leaf_hash(b"other")).is_err());
            if !proof.is_empty() {
                let mut bad = proof.clone();
                bad[0][0] ^= 1;
                assert!(verify_inclusion(&bad, size, r, index, leaf).is_err());
            }
            assert!(verify_inclusion(&proof, size, r, size, leaf).is_err());
        }
    }
    assert!(inclusion_proof(5, 5, &mem).is_err());
    assert!(verify_inclusion(&vec![[0u8; 32]; 500], 5, [0; 32], 1, [0; 32]).is_err());
}

#[test]
fn the_prover_makes_the_same_proofs_for_every_leaf_of_every_size() {
    let all = leaves(70);
    let mem = log_of(&all);
    for size in 1..=70u64 {
        let prover = Prover::new(size, &mem);
        // In order and out of order: the edge cache must not depend on which came first.
        for index in (0..size).chain((0..size).rev()) {
            assert_eq!(
                prover.prove(index).unwrap(),
                inclusion_proof(size, index, &mem).unwrap(),
                "leaf {index} of {size}"
            );
        }
        assert!(prover.prove(size).is_err());
    }
}

#[test]
fn consistency_proofs_verify_and_catch_rewrites() {
    let all = leaves(33);
    let mem = log_of(&all);
    for old in 1..=33u64 {
        for new in old..=33u64 {
            let proof = consistency_proof(old, new, &mem).unwrap();
            let (ro, rn) = (root(old, &mem).unwrap(), root(new, &mem).unwrap());
            verify_consistency(&proof, old, ro, new, rn).unwrap();
            let mut forged = all[..old as usize].to_vec();
            forged[0] = b"rewritten".to_vec();
            let forged_root = reference_root(&forged);
            assert!(verify_consistency(&proof, old, forged_root, new, rn).is_err());
        }
    }
    assert!(consistency_proof(0, 3, &mem).is_err());
    assert!(consistency_proof(4, 3, &mem).is_err());
}

/// A stand-in key: "signature" = SHA-256(secret || text). Real keys are tested in attest.
struct Toy {
    name: String,
    secret: Vec<u8>,
}

impl Toy {
    fn sig(&self, text: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(&self.secret);
        h.update(text);
        h.finalize().to_vec()
    }
}

impl NoteSigner for Toy {
    fn key_name(&self) -> &str {
        &self.name
    }
    fn note_key_id(&self) -> u32 {
        7
    }
    fn sign_note(&self, text: &[u8]) -> Result<Vec<u8>, String> {
        Ok(self.sig(text))
    }
}

impl NoteVerifier for Toy {
    fn key_name(&self) -> &str {
        &self.name
    }
    fn note_key_id(&self) -> u32 {
        7
    }
    fn verify_note(&self, text: &[u8], sig: &[u8]) -> bool {
        self.sig(text) == sig
    }
}

#[test]
fn checkpoints_are_signed_notes() {
    let key = Toy {
        name: "example.test/log".into(),
        secret: b"k".to_vec(),
    };
    let cp = Checkpoint {
        origin: "example.test/log".into(),
        size: 42,
        root: [9; 32],
    };
    let text = sign_checkpoint(&cp, &key).unwrap();
    let body = format!("example.test/log\n42\n{}\n", B64.encode([9u8; 32]));
    assert!(
        text.starts_with(&format!("{body}\n\u{2014} example.test/log ")),
        "{text}"
    );
    assert_eq!(note_body(&text), Some(body.as_str()));
    assert_eq!(open_checkpoint(&text, &key).unwrap(), cp);

    let tampered = text.replace("\n42\n", "\n43\n");
    assert!(matches!(
        open_checkpoint(&tampered, &key),
        Err(TlogError::Signature(_))
    ));
    let other = Toy {
        name: "example.test/log".into(),
        secret: b"other".to_vec(),
    };
    assert!(open_checkpoint(&text, &other).is_err());
    let stranger = Toy {
        name: "elsewhere".into(),
        secret: b"k".to_vec(),
    };
    let err = open_checkpoint(&text, &stranger).unwrap_err().to_string();
    assert!(err.contains("no signature by the trusted key"), "{err}");
    assert!(open_checkpoint("garbage", &key).is_err());
}

#[test]
fn ed25519_key_ids_follow_the_spec() {
    // Key id is SHA-256(name || "\n" || 0x01 || key)[:4].
    let public = [3u8; 32];
    let mut h = Sha256::new();
    h.update(b"n\n\x01");
    h.update(public);
    let d = h.finalize();
    assert_eq!(
        ed25519_note_key_id("n", &public),
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    );
    let vkey = ed25519_verifier_key("n", &public);
    assert!(vkey.starts_with(&format!("n+{:08x}+", ed25519_note_key_id("n", &public))));
}
