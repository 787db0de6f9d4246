//! Sealing: turns a final execution into its receipt. Under one lock it fixes the receipt's
//! place — the tenant's chain position (sequence, previous digest) and the log index — signs
//! the Statement, encodes the record, and hands it to the committer in that order. The
//! signing and encoding happen on the caller's thread, not the committer's.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::committer::{CommitError, Committer, Sealed};
use crate::attest::dsse;
use crate::attest::keys::SigningKey;
use crate::domain::execution::{Execution, ExecutionStatus, ReceiptRef};
use crate::domain::ids::{Digest, TenantId};
use crate::domain::receipt::{self, ApplianceInfo, ChainHead, PAYLOAD_TYPE};
use crate::store::{EncodedDecision, EncodedExecution, Store, StoreError};

/// The keys and identity that seal receipts.
pub struct Signing {
    /// The appliance key: signs checkpoints, and receipts of tenants without a key.
    pub appliance: Arc<SigningKey>,
    /// Keys of tenants that sign with their own.
    pub tenant_keys: HashMap<TenantId, Arc<SigningKey>>,
    /// The log origin.
    pub origin: String,
    /// The appliance version written into receipts.
    pub version: String,
}

impl Signing {
    /// The key that signs a tenant's receipts.
    pub fn key_for(&self, tenant: &TenantId) -> &SigningKey {
        self.tenant_keys.get(tenant).map_or(&self.appliance, |k| k)
    }

    fn info(&self) -> ApplianceInfo {
        ApplianceInfo {
            version: self.version.clone(),
            log_origin: self.origin.clone(),
        }
    }
}

struct Positions {
    heads: HashMap<TenantId, ChainHead>,
    next_index: u64,
}

/// Assigns chain and log positions and signs receipts, in commit order.
pub struct Sealer {
    positions: Mutex<Positions>,
    store: Arc<Store>,
    signing: Arc<Signing>,
}

fn store_err(e: StoreError) -> CommitError {
    CommitError::Store(e.to_string())
}

impl Sealer {
    /// A sealer continuing the store's log.
    pub fn new(store: Arc<Store>, signing: Arc<Signing>) -> Result<Self, StoreError> {
        let next_index = store.read()?.log_size()?;
        Ok(Sealer {
            positions: Mutex::new(Positions {
                heads: HashMap::new(),
                next_index,
            }),
            store,
            signing,
        })
    }

    /// Seals a final execution: signs its receipt, commits it with the record, and returns
    /// the execution with its receipt reference once durable.
    pub async fn seal(
        &self,
        committer: &Committer,
        mut exec: Execution,
        artifacts: Vec<(Digest, Vec<u8>)>,
    ) -> Result<Execution, CommitError> {
        debug_assert!(exec.status.is_final());
        let decisions = if exec.status == ExecutionStatus::Denied {
            exec.decisions
                .iter()
                .map(EncodedDecision::new)
                .collect::<Result<Vec<_>, _>>()
                .map_err(store_err)?
        } else {
            Vec::new()
        };
        let rx = {
            let mut p = self.positions.lock();
            let head = match p.heads.get(&exec.tenant) {
                Some(h) => h.clone(),
                None => self
                    .store
                    .read()
                    .and_then(|r| r.chain_head(&exec.tenant))
                    .map_err(store_err)?,
            };
            let statement = receipt::statement(&exec, &head, self.signing.info());
            let payload = statement.to_payload();
            let digest = Digest::of(&payload);
            let key = self.signing.key_for(&exec.tenant);
            let envelope = dsse::sign(PAYLOAD_TYPE, &payload, key)
                .map_err(|e| CommitError::Signing(e.to_string()))?;
            let envelope = serde_json::value::to_raw_value(&envelope)
                .map_err(|e| CommitError::Signing(e.to_string()))?;
            let log_index = p.next_index;
            exec.receipt = Some(ReceiptRef { digest, log_index });
            let record = EncodedExecution::new(&exec).map_err(store_err)?;
            let rx = committer.seal(Sealed {
                record,
                decisions,
                artifacts,
                payload,
                envelope,
                keyid: key.public().keyid().to_owned(),
                log_index,
                sequence: head.count + 1,
            })?;
            p.heads.insert(
                exec.tenant.clone(),
                ChainHead {
                    count: head.count + 1,
                    last: Some(digest),
                },
            );
            p.next_index += 1;
            rx
        };
        rx.await.map_err(|_| CommitError::Stopped)??;
        Ok(exec)
    }
}
