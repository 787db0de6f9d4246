//! An in-memory log: the same stored-hash layout as the store, for tests, tools and
//! generated conformance vectors.

use super::{Hash, HashSource, TlogError, first_stored_index, hashes_to_store, leaf_hash};

/// A transparency log held in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryLog {
    hashes: Vec<Hash>,
    size: u64,
}

impl HashSource for MemoryLog {
    fn hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, String> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.hashes.get(i).copied())
                    .ok_or_else(|| format!("no stored hash at index {i}"))
            })
            .collect()
    }
}

impl MemoryLog {
    /// Appends a leaf and returns its index.
    pub fn append(&mut self, data: &[u8]) -> Result<u64, TlogError> {
        let n = self.size;
        debug_assert_eq!(first_stored_index(n) as usize, self.hashes.len());
        let new = hashes_to_store(n, leaf_hash(data), self)?;
        self.hashes.extend(new);
        self.size += 1;
        Ok(n)
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }
}
