//! Replays a recorded decision against the policy bundle it pinned (by digest, from the
//! store) and explains it: which rules fired and why, and whether the replay reaches the
//! recorded outcome. Deterministic: the same decision gives the same answer every time.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use super::App;
use crate::domain::execution::{Decision, DenyReason};
use crate::domain::ids::{DecisionId, Digest};
use crate::policy::{Explanation, Policies, PolicyBundle, PolicyError};

/// Bundles kept loaded for replays (besides the active one).
const CACHED_BUNDLES: usize = 8;

/// A decision replayed and explained.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Replay {
    /// The decision.
    pub decision: DecisionId,
    /// The package that decided.
    pub policy: String,
    /// The pinned bundle the replay ran on.
    pub policy_digest: Digest,
    /// Digest of the recorded input.
    pub input_digest: Digest,
    /// What was recorded.
    pub recorded: Outcome,
    /// Whether the replay gives the recorded outcome.
    pub matches_recorded: bool,
    /// The replay: which rules fired and why.
    pub explanation: Explanation,
}

/// An outcome.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Outcome {
    /// Allowed.
    pub allow: bool,
    /// Deny reasons.
    pub reasons: Vec<DenyReason>,
}

/// Why a decision could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The pinned bundle is not in the store.
    #[error("the policy bundle {0} this decision pinned is not in the store")]
    BundleMissing(Digest),
    /// The stored bundle does not have the digest it is stored under.
    #[error("the stored policy bundle {expected} has digest {actual}")]
    BundleCorrupt {
        /// Digest pinned.
        expected: Digest,
        /// Digest of what was stored.
        actual: Digest,
    },
    /// Loading or evaluating failed.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Loaded bundles by digest.
#[derive(Default)]
pub struct BundleCache(Mutex<HashMap<Digest, Arc<Policies>>>);

/// Replays kept for pages viewed again (a decision and its pinned bundle never change, so
/// neither does its replay).
pub const CACHED_REPLAYS: usize = 4096;

type ReplayKey = (DecisionId, Digest);

/// Recent replays by decision id and input digest, oldest evicted first.
#[derive(Default)]
pub struct ReplayCache(Mutex<Replays>);

#[derive(Default)]
struct Replays {
    by_key: HashMap<ReplayKey, Arc<Replay>>,
    order: std::collections::VecDeque<ReplayKey>,
}

impl App {
    /// The policies of bundle `digest`: the active ones, or loaded from the store.
    pub fn pinned_policies(&self, digest: &Digest) -> Result<Arc<Policies>, ReplayError> {
        let active = self.engine.policies();
        if &active.digest() == digest {
            return Ok(active.clone());
        }
        if let Some(p) = self.bundles.0.lock().get(digest) {
            return Ok(p.clone());
        }
        let stored = self
            .engine
            .store()
            .read()?
            .policy(digest)?
            .ok_or_else(|| ReplayError::BundleMissing(*digest))?;
        let bundle: PolicyBundle = serde_json::from_value(stored)
            .map_err(|e| crate::store::StoreError::Corrupt(format!("policy bundle: {e}")))?;
        let policies = Arc::new(Policies::load(bundle, active.limits())?);
        if &policies.digest() != digest {
            return Err(ReplayError::BundleCorrupt {
                expected: *digest,
                actual: policies.digest(),
            });
        }
        let mut cache = self.bundles.0.lock();
        if cache.len() >= CACHED_BUNDLES {
            cache.clear();
        }
        cache.insert(*digest, policies.clone());
        Ok(policies)
    }

    /// [`App::replay`], answered from the recent replays when the decision was replayed
    /// before.
    pub fn replay_cached(&self, decision: &Decision) -> Result<Arc<Replay>, ReplayError> {
        let key = (decision.id.clone(), decision.input_digest);
        if let Some(r) = self.replays.0.lock().by_key.get(&key) {
            return Ok(r.clone());
        }
        let replay = Arc::new(self.replay(decision)?);
        let mut cache = self.replays.0.lock();
        if cache.by_key.insert(key.clone(), replay.clone()).is_none() {
            cache.order.push_back(key);
            while cache.order.len() > CACHED_REPLAYS {
                if let Some(old) = cache.order.pop_front() {
                    cache.by_key.remove(&old);
                }
            }
        }
        Ok(replay)
    }

    /// Replays `decision` on its pinned bundle and explains it.
    pub fn replay(&self, decision: &Decision) -> Result<Replay, ReplayError> {
        let policies = self.pinned_policies(&decision.policy_digest)?;
        let explanation = policies.explain(&decision.policy, &decision.input)?;
        let mut recorded = decision.reasons.clone();
        recorded.sort();
        let mut replayed = explanation.reasons.clone();
        replayed.sort();
        Ok(Replay {
            decision: decision.id.clone(),
            policy: decision.policy.clone(),
            policy_digest: decision.policy_digest,
            input_digest: decision.input_digest,
            recorded: Outcome {
                allow: decision.allow,
                reasons: decision.reasons.clone(),
            },
            matches_recorded: explanation.allow == decision.allow && replayed == recorded,
            explanation,
        })
    }
}
