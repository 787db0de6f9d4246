//! Every redb table, its key and value types. Tenant data is keyed by tenant first, so a
//! tenant scope's key range is the only way to reach it. See `docs/design/store.md`.

use redb::TableDefinition;

/// Appliance metadata: schema version, log origin, versions seen.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// (tenant, execution id) → encoded `Execution`.
pub const EXECUTIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("executions");

/// (tenant, status, execution id) → (): executions by status, for filtered lists.
pub const EXECUTIONS_BY_STATUS: TableDefinition<(&str, &str, &str), ()> =
    TableDefinition::new("executions_by_status");

/// (tenant, execution id) → 0 if queued, else the start time in microseconds since the Unix
/// epoch (running), for executions not yet final. The live state of an execution is this
/// value over its record.
pub const ACTIVE: TableDefinition<(&str, &str), u64> = TableDefinition::new("active");

/// (tenant, decision id) → encoded `Decision`.
pub const DECISIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("decisions");

/// (tenant, execution id) → encoded `StoredReceipt`.
pub const RECEIPTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("receipts");

/// (tenant, receipt digest hex) → execution id.
pub const RECEIPTS_BY_DIGEST: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("receipts_by_digest");

/// tenant → receipt chain head: count (u64 LE) and last digest (32 bytes).
pub const TENANT_HEADS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenant_heads");

/// (tenant, artifact digest hex) → encoded bytes.
pub const ARTIFACTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("artifacts");

/// log leaf index → (tenant, execution id) of the receipt at that leaf.
pub const LOG_LEAVES: TableDefinition<u64, (&str, &str)> = TableDefinition::new("log_leaves");

/// stored-hash index → hash (the tlog stored-hash layout).
pub const LOG_HASHES: TableDefinition<u64, [u8; 32]> = TableDefinition::new("log_hashes");

/// tree size → signed checkpoint note.
pub const CHECKPOINTS: TableDefinition<u64, &str> = TableDefinition::new("checkpoints");

/// change sequence number → (tenant, kind, id): what changed, in commit order, for derived
/// state (the search index) to follow.
pub const CHANGES: TableDefinition<u64, (&str, &str, &str)> = TableDefinition::new("changes");

/// key id → encoded public key record (every key that ever signed).
pub const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");

/// policy bundle digest hex → encoded bundle (every bundle that was ever active, so its
/// decisions can be replayed).
pub const POLICIES: TableDefinition<&str, &[u8]> = TableDefinition::new("policies");

/// audit sequence → encoded `AuditEvent` (hash-linked, append-only).
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// (tenant, audit sequence) → (): audit events about a tenant's data.
pub const AUDIT_BY_TENANT: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("audit_by_tenant");

/// (owner, evidence id) → compressed bytes: archived evidence (signed reports). The owner is
/// a tenant id, or [`APPLIANCE_OWNER`] for evidence about the whole appliance. Write-once.
pub const EVIDENCE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("evidence");

/// (tenant, violation id) → encoded residency `Violation`: each finding of the residency
/// auditor, stored once, resolved in place.
pub const RESIDENCY: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("residency");

/// (kind, name, version) → encoded `CatalogEntry`: the package catalog (appliance-wide).
pub const CATALOG: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("catalog");

/// (kind, name, version) → the release as published (a tar.gz of its files), write-once.
pub const CATALOG_RELEASES: TableDefinition<(&str, &str, &str), &[u8]> =
    TableDefinition::new("catalog_releases");

/// Owner key of appliance-wide evidence (not a valid tenant id).
pub const APPLIANCE_OWNER: &str = "*";
