//! The store: everything durable lives in one redb file in the data directory. Only this
//! module imports redb.
//!
//! - Tenant data is keyed by tenant first and reached only through a [`TenantScope`].
//! - Writes happen in [`Store::write`] batches: one transaction, one commit (fsync), many
//!   executions (group commit). A batch that fails changes nothing.
//! - A schema version is recorded; an older data directory is migrated, a newer one refused.

mod backup;
mod codec;
mod read;
mod scan;
mod tables;
mod write;

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _};
use serde::{Deserialize, Serialize};

pub use backup::Snapshot;
pub use read::{ListQuery, LogHashes, Page, Reader, StoredExecution};
pub use scan::{Area, BoundaryScan, ScanProblem, TenantRecords};

pub use write::Writer;

use crate::domain::ids::Digest;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "maestro.redb";

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process has the data directory open.
    #[error(
        "data directory {0} is in use by another maestro process (stop it, or use --server to talk to it)"
    )]
    Locked(PathBuf),
    /// The data directory was written by a newer maestro.
    #[error(
        "data directory schema version {found} is newer than this maestro supports ({supported}); run a newer maestro or restore a backup"
    )]
    SchemaTooNew {
        /// Version found on disk.
        found: u32,
        /// Version this build supports.
        supported: u32,
    },
    /// The file is not a maestro store or a record does not decode.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// A write named a tenant other than its scope's (a bug, refused).
    #[error("record of tenant {record} written with a scope for {scope}")]
    ScopeMismatch {
        /// Tenant of the scope.
        scope: String,
        /// Tenant of the record.
        record: String,
    },
    /// The request is invalid (a bad cursor, a missing prerequisite).
    #[error("{0}")]
    Invalid(String),
    /// Creating the data directory failed.
    #[error("data directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// redb failed (disk full, IO error, …).
    #[error("storage: {0}")]
    Storage(#[from] redb::Error),
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Storage(e.into())
            }
        }
    )*};
}
storage_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// A receipt as stored: the signed envelope and where it is in the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredReceipt {
    /// SHA-256 of the Statement payload.
    pub digest: Digest,
    /// Leaf index in the transparency log.
    pub log_index: u64,
    /// The DSSE envelope, as JSON.
    pub envelope: Box<serde_json::value::RawValue>,
    /// Key id of the signing key.
    pub keyid: String,
}

/// An execution record encoded for the store, ready to insert. Encoding is the expensive
/// part of a write; doing it before the write transaction keeps group commits short.
#[derive(Debug, Clone)]
pub struct EncodedExecution {
    tenant: crate::domain::ids::TenantId,
    id: crate::domain::ids::ExecutionId,
    status: crate::domain::execution::ExecutionStatus,
    started_at: Option<jiff::Timestamp>,
    bytes: Vec<u8>,
}

impl EncodedExecution {
    /// Encodes a record (compressed once final; queued records are short-lived).
    pub fn new(e: &crate::domain::execution::Execution) -> Result<Self, StoreError> {
        Ok(EncodedExecution {
            tenant: e.tenant.clone(),
            id: e.id.clone(),
            status: e.status,
            started_at: e.started_at,
            bytes: codec::encode_with(e, e.status.is_final())?,
        })
    }

    /// The tenant of the record.
    pub fn tenant(&self) -> &crate::domain::ids::TenantId {
        &self.tenant
    }

    /// The execution id.
    pub fn id(&self) -> &crate::domain::ids::ExecutionId {
        &self.id
    }
}

/// A decision record encoded for the store.
#[derive(Debug, Clone)]
pub struct EncodedDecision {
    tenant: crate::domain::ids::TenantId,
    id: crate::domain::ids::DecisionId,
    bytes: Vec<u8>,
}

impl EncodedDecision {
    /// The tenant of the decision.
    pub fn tenant(&self) -> &crate::domain::ids::TenantId {
        &self.tenant
    }

    /// Encodes a decision.
    pub fn new(d: &crate::domain::execution::Decision) -> Result<Self, StoreError> {
        Ok(EncodedDecision {
            tenant: d.tenant.clone(),
            id: d.id.clone(),
            bytes: codec::encode(d)?,
        })
    }
}

/// State of an execution that is not final yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveState {
    /// Accepted, not started.
    Queued,
    /// Started by a runner.
    Running,
}

impl ActiveState {
    pub(crate) fn of(value: u64) -> Self {
        if value == 0 {
            ActiveState::Queued
        } else {
            ActiveState::Running
        }
    }
}

/// A change recorded in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Sequence number.
    pub seq: u64,
    /// Tenant.
    pub tenant: String,
    /// `execution`, `receipt` or `decision`.
    pub kind: String,
    /// Id of what changed.
    pub id: String,
}

/// The durable store.
pub struct Store {
    db: Database,
    dir: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, migrating or refusing other schema versions.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let db = Database::builder()
            .set_cache_size(256 * 1024 * 1024)
            .create(&path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(dir.to_owned()),
                redb::DatabaseError::Storage(redb::StorageError::Corrupted(msg)) => {
                    StoreError::Corrupt(format!("{}: {msg}", path.display()))
                }
                other => StoreError::Storage(other.into()),
            })?;
        let store = Store {
            db,
            dir: dir.to_owned(),
        };
        store.init()?;
        Ok(store)
    }

    fn init(&self) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_quick_repair(true);
        {
            let mut meta = txn.open_table(tables::META)?;
            let executions = txn.open_table(tables::EXECUTIONS)?;
            let found =
                meta.get("schema_version")?
                    .map(|v| {
                        let bytes: [u8; 4] = v.value().try_into().map_err(|_| {
                            StoreError::Corrupt("schema_version is not 4 bytes".into())
                        })?;
                        Ok::<_, StoreError>(u32::from_le_bytes(bytes))
                    })
                    .transpose()?;
            match found {
                None if executions.len()? > 0 => {
                    return Err(StoreError::Corrupt(
                        "the store has data but no schema version".into(),
                    ));
                }
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION.to_le_bytes().as_slice())?;
                }
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::SchemaTooNew {
                        found: v,
                        supported: SCHEMA_VERSION,
                    });
                }
                Some(v) if v < SCHEMA_VERSION => {
                    // Migrations from older versions go here, one step per version, in this
                    // transaction. Version 1 is the first.
                    return Err(StoreError::Corrupt(format!("unknown schema version {v}")));
                }
                Some(_) => {}
            }
            drop(executions);
            drop(meta);
            write::create_tables(&txn)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A consistent read-only view.
    pub fn read(&self) -> Result<Reader, StoreError> {
        Ok(Reader::new(self.db.begin_read()?))
    }

    /// Runs `f` in one write transaction and commits it durably; if `f` fails, nothing is
    /// written.
    pub fn write<R>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_quick_repair(true);
        txn.set_durability(redb::Durability::Immediate)?;
        let result = {
            let mut writer = Writer::new(&txn)?;
            f(&mut writer)?
        };
        txn.commit()?;
        Ok(result)
    }

    /// Sets a metadata value.
    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(|w| w.set_meta(key, value))
    }

    /// Reads a metadata value.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(tables::META)?;
        Ok(table.get(key)?.map(|v| v.value().to_vec()))
    }
}

#[cfg(test)]
mod tests;
