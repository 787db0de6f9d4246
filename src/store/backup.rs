//! A consistent copy of the whole store while it serves: every table copied, row by row,
//! from one read transaction into a new redb file. Writers go on meanwhile; the copy is the
//! store as of the moment the read transaction began. A table this build does not know
//! (written by a newer maestro) is refused rather than silently left out.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{
    Database, Key, ReadTransaction, ReadableDatabase as _, ReadableTable as _, TableDefinition,
    TableHandle as _, Value,
};
use serde::{Deserialize, Serialize};

use super::{DB_FILE, SCHEMA_VERSION, Store, StoreError, tables};

/// Rows copied per write transaction of the copy (bounded memory for any store size).
const CHUNK: u64 = 50_000;

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Schema version of the copied store.
    pub schema_version: u32,
    /// Rows per table.
    pub tables: BTreeMap<String, u64>,
    /// Leaves in the transparency log.
    pub log_size: u64,
    /// The latest signed checkpoint (note text), if the log is not empty.
    pub checkpoint: Option<String>,
}

/// Copies one table; commits every [`CHUNK`] rows without fsync (the last commit of the
/// copy is durable).
fn copy<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &Database,
    def: TableDefinition<K, V>,
    (counts, chunk): (&mut BTreeMap<String, u64>, u64),
) -> Result<(), StoreError> {
    let source = from.open_table(def)?;
    let mut rows = 0u64;
    let mut iter = source.iter()?;
    loop {
        let mut txn = to.begin_write()?;
        txn.set_durability(redb::Durability::None)?;
        let mut more = false;
        {
            let mut table = txn.open_table(def)?;
            for entry in iter.by_ref() {
                let (k, v) = entry?;
                table.insert(k.value(), v.value())?;
                rows += 1;
                if rows.is_multiple_of(chunk) {
                    more = true;
                    break;
                }
            }
        }
        txn.commit()?;
        if !more {
            break;
        }
    }
    counts.insert(def.name().to_owned(), rows);
    Ok(())
}

macro_rules! copy_all {
    ($from:expr, $to:expr, $counts:expr, $chunk:expr, [$($t:ident),* $(,)?]) => {{
        $(copy($from, $to, tables::$t, ($counts, $chunk))?;)*
        [$(tables::$t.name()),*]
    }};
}

impl Store {
    /// Writes a consistent copy of the store to `dir/maestro.redb` (`dir` must not hold
    /// one) while the store keeps serving.
    pub fn snapshot(&self, dir: &Path) -> Result<Snapshot, StoreError> {
        self.snapshot_in_chunks(dir, CHUNK)
    }

    /// [`Store::snapshot`], committing the copy every `chunk` rows.
    pub(super) fn snapshot_in_chunks(
        &self,
        dir: &Path,
        chunk: u64,
    ) -> Result<Snapshot, StoreError> {
        let path = dir.join(DB_FILE);
        if path.exists() {
            return Err(StoreError::Invalid(format!(
                "{} exists; a snapshot is written to a new file",
                path.display()
            )));
        }
        let from = self.db.begin_read()?;
        let to = Database::builder()
            .set_cache_size(64 * 1024 * 1024)
            .create(&path)
            .map_err(|e| StoreError::Storage(e.into()))?;
        let mut counts = BTreeMap::new();
        let known = copy_all!(
            &from,
            &to,
            &mut counts,
            chunk.max(1),
            [
                META,
                EXECUTIONS,
                EXECUTIONS_BY_STATUS,
                ACTIVE,
                DECISIONS,
                RECEIPTS,
                RECEIPTS_BY_DIGEST,
                TENANT_HEADS,
                ARTIFACTS,
                LOG_LEAVES,
                LOG_HASHES,
                CHECKPOINTS,
                CHANGES,
                KEYS,
                POLICIES,
                AUDIT,
                AUDIT_BY_TENANT,
                EVIDENCE,
                RESIDENCY,
                CATALOG,
                CATALOG_RELEASES,
            ]
        );
        for handle in from.list_tables()? {
            if !known.contains(&handle.name()) {
                return Err(StoreError::Invalid(format!(
                    "table {:?} is not one this maestro knows; back it up with the maestro that wrote it",
                    handle.name()
                )));
            }
        }
        if from.list_multimap_tables()?.next().is_some() {
            return Err(StoreError::Invalid(
                "the store has multimap tables this maestro does not know".into(),
            ));
        }
        let mut last = to.begin_write()?;
        last.set_durability(redb::Durability::Immediate)?;
        last.commit()?;
        let log_size = counts
            .get(tables::LOG_LEAVES.name())
            .copied()
            .unwrap_or_default();
        let checkpoint = {
            let table = from.open_table(tables::CHECKPOINTS)?;
            table.last()?.map(|(_, note)| note.value().to_owned())
        };
        Ok(Snapshot {
            schema_version: SCHEMA_VERSION,
            tables: counts,
            log_size,
            checkpoint,
        })
    }
}
