//! Backup and restore of a data directory. A backup is a tar.gz: `MANIFEST.json` first (the
//! maestro version, the snapshot's table counts, log size and latest signed checkpoint,
//! and the SHA-256 of every other file), then `maestro.redb` (a consistent copy of the
//! store made inside one read transaction while the appliance serves), the signing key
//! under `keys/` (unless left out), the demo layer and `trust/`. The search index and the
//! work directory are derived state and are not backed up.
//!
//! Restore checks every file against the manifest before anything reaches the target
//! directory, which must be empty or absent; on any failure it leaves nothing behind.
//! [`App::verify_restored`] then checks every receipt, the log and the audit chain.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::App;
use super::demo;
use super::postrelease::CheckResult;
use crate::archive::{self, ArchiveError, HashingWriter, Limits};
use crate::config::Config;
use crate::domain::ids::Digest;
use crate::store::{DB_FILE, SCHEMA_VERSION, Snapshot, Store, StoreError};

/// Name of the manifest entry, the first of every backup.
pub const MANIFEST: &str = "MANIFEST.json";

/// The backup format this build writes and reads.
pub const FORMAT: &str = "maestro-backup/v1";

/// Where the signing key goes in a backup (and in the restored data directory).
pub const KEY_ENTRY: &str = "keys/appliance.pem";

/// Directory of supply-chain trust material in the data directory.
const TRUST_DIR: &str = "trust";

/// Limits of a backup read: a store may be large and compress very well (empty pages).
const LIMITS: Limits = Limits {
    max_files: 100_000,
    max_file_bytes: 1 << 42,
    max_total_bytes: 1 << 44,
    max_ratio: 100_000,
};

/// What went wrong backing up or restoring.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The archive could not be written or read.
    #[error("backup archive: {0}")]
    Archive(#[from] ArchiveError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The backup is not one this maestro restores, or does not match its manifest.
    #[error("the backup is refused: {0}")]
    Refused(String),
    /// The target directory already holds data.
    #[error("{0} is not empty: restore into a new or empty directory")]
    NotEmpty(PathBuf),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// SHA-256 of its contents.
    pub sha256: Digest,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The manifest of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Version of the maestro that wrote it.
    pub version: String,
    /// When the snapshot was taken.
    pub created_at: jiff::Timestamp,
    /// What the store copy holds.
    pub snapshot: Snapshot,
    /// Whether the signing key is in the backup.
    pub keys: bool,
    /// Every other file, by path.
    pub files: BTreeMap<String, FileEntry>,
}

/// A written backup: its manifest, and the archive's digest and size.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    /// The manifest.
    pub manifest: Manifest,
    /// SHA-256 of the archive.
    pub sha256: Digest,
    /// Size of the archive in bytes.
    pub bytes: u64,
}

/// The SHA-256 and size of a file.
pub fn hash_file(path: &Path) -> Result<FileEntry, BackupError> {
    let mut file = File::open(path).map_err(io_at(path))?;
    let mut hasher = Sha256::new();
    let bytes = io::copy(&mut file, &mut hasher).map_err(io_at(path))?;
    Ok(FileEntry {
        sha256: Digest(hasher.finalize().into()),
        bytes,
    })
}

/// Regular files under `dir`, as archive paths under `prefix`.
fn files_under(
    dir: &Path,
    prefix: &str,
    out: &mut BTreeMap<String, PathBuf>,
) -> Result<(), BackupError> {
    for entry in std::fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(BackupError::Refused(format!(
                "{} has a name that is not UTF-8",
                path.display()
            )));
        };
        let kind = entry.file_type().map_err(io_at(&path))?;
        let archived = format!("{prefix}/{name}");
        if kind.is_dir() {
            files_under(&path, &archived, out)?;
        } else if kind.is_file() {
            out.insert(archived, path);
        }
    }
    Ok(())
}

/// Writes a backup of the data directory of `config`, whose store is `store`, to `out`.
/// `keys` says whether the signing key goes in. The store keeps serving meanwhile.
pub fn write(
    store: &Store,
    config: &Config,
    keys: bool,
    out: impl Write,
) -> Result<Written, BackupError> {
    let staging = tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(store.dir())
        .map_err(io_at(store.dir()))?;
    let created_at = jiff::Timestamp::now();
    let snapshot = store.snapshot(staging.path())?;

    let mut sources: BTreeMap<String, PathBuf> = BTreeMap::new();
    sources.insert(DB_FILE.into(), staging.path().join(DB_FILE));
    let key_file = config.key_file();
    if keys && key_file.is_file() {
        sources.insert(KEY_ENTRY.into(), key_file);
    }
    let demo_file = config.data_dir.join(demo::FILE);
    if demo_file.is_file() {
        sources.insert(demo::FILE.into(), demo_file);
    }
    let trust = config.data_dir.join(TRUST_DIR);
    if trust.is_dir() {
        files_under(&trust, TRUST_DIR, &mut sources)?;
    }
    let mut files = BTreeMap::new();
    for (name, path) in &sources {
        files.insert(name.clone(), hash_file(path)?);
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        created_at,
        snapshot,
        keys: sources.contains_key(KEY_ENTRY),
        files,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BackupError::Refused(format!("manifest: {e}")))?;

    let mut writer = archive::Writer::new(HashingWriter::new(out), 1);
    writer.add(MANIFEST, &manifest_json)?;
    for (name, path) in &sources {
        let file = File::open(path).map_err(io_at(path))?;
        writer.add_reader(name, manifest.files[name].bytes, io::BufReader::new(file))?;
    }
    let (mut out, sha256, bytes) = writer.finish()?.finish();
    out.flush().map_err(io_at(Path::new("backup output")))?;
    Ok(Written {
        manifest,
        sha256,
        bytes,
    })
}

/// What an empty filesystem's root holds (ext4), and restore may leave alone.
const LOST_FOUND: &str = "lost+found";

/// Whether `dir` is absent or empty (but for `lost+found`, as at a volume's root).
fn is_empty_dir(dir: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().all(|e| e.file_name() == LOST_FOUND)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(BackupError::Io {
            path: dir.to_owned(),
            source: e,
        }),
    }
}

/// Restores the backup read from `input` into `target` (absent or empty, but for a
/// `lost+found`): every file is
/// checked against the manifest in a staging directory beside `target` before anything is
/// moved into it. On failure nothing is left behind.
pub fn restore(input: impl Read, target: &Path) -> Result<Manifest, BackupError> {
    if !is_empty_dir(target)? {
        return Err(BackupError::NotEmpty(target.to_owned()));
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io_at(&parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".maestro-restore-")
        .tempdir_in(&parent)
        .map_err(io_at(&parent))?;
    let manifest = unpack_checked(input, Some(staging.path()))?;
    let created = !target.exists();
    let moved = (|| {
        std::fs::create_dir_all(target).map_err(io_at(target))?;
        for entry in std::fs::read_dir(staging.path()).map_err(io_at(staging.path()))? {
            let entry = entry.map_err(io_at(staging.path()))?;
            let dest = target.join(entry.file_name());
            std::fs::rename(entry.path(), &dest).map_err(io_at(&dest))?;
        }
        Ok::<_, BackupError>(())
    })();
    if let Err(e) = moved {
        if created {
            let _ = std::fs::remove_dir_all(target);
        } else if let Ok(entries) = std::fs::read_dir(target) {
            for entry in entries.flatten().filter(|e| e.file_name() != LOST_FOUND) {
                let _ = std::fs::remove_dir_all(entry.path())
                    .or_else(|_| std::fs::remove_file(entry.path()));
            }
        }
        return Err(e);
    }
    let key = target.join(KEY_ENTRY);
    if key.exists() {
        restrict(&key)?;
    }
    Ok(manifest)
}

/// Makes a restored private key readable by its owner only.
fn restrict(path: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_at(path))
}

/// Checks a backup read from `input`: its manifest, and every file against it, without
/// writing anything.
pub fn check(input: impl Read) -> Result<Manifest, BackupError> {
    unpack_checked(input, None)
}

/// Reads a backup, checking the manifest and every file against it; unpacks into `dir`
/// (empty) when given.
fn unpack_checked(input: impl Read, dir: Option<&Path>) -> Result<Manifest, BackupError> {
    let mut manifest: Option<Manifest> = None;
    let mut seen: BTreeMap<String, FileEntry> = BTreeMap::new();
    archive::read(input, &LIMITS, |entry| {
        if entry.path == MANIFEST {
            let mut text = Vec::new();
            entry.data.take(16 << 20).read_to_end(&mut text)?;
            let m: Manifest = serde_json::from_slice(&text)
                .map_err(|e| refused(MANIFEST, format!("is not a maestro backup manifest: {e}")))?;
            if m.format != FORMAT {
                return Err(refused(
                    MANIFEST,
                    format!("format {:?} is not {FORMAT:?}", m.format),
                ));
            }
            if m.snapshot.schema_version > SCHEMA_VERSION {
                return Err(refused(
                    MANIFEST,
                    format!(
                        "the store has schema version {}, newer than this maestro's {SCHEMA_VERSION}: restore it with maestro {} or newer",
                        m.snapshot.schema_version, m.version
                    ),
                ));
            }
            manifest = Some(m);
            return Ok(());
        }
        let Some(m) = &manifest else {
            return Err(refused(&entry.path, format!("comes before {MANIFEST}")));
        };
        let Some(expected) = m.files.get(&entry.path) else {
            return Err(refused(&entry.path, "is not listed in the manifest".into()));
        };
        let (sha256, bytes) = match dir {
            Some(dir) => {
                let dest = dir.join(&entry.path);
                if let Some(p) = dest.parent() {
                    std::fs::create_dir_all(p)?;
                }
                let mut file = BufWriter::new(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&dest)?,
                );
                let mut hashing = HashingWriter::new(&mut file);
                io::copy(&mut entry.data.take(entry.size), &mut hashing)?;
                let (_, sha256, bytes) = hashing.finish();
                file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                (sha256, bytes)
            }
            None => {
                let mut hashing = HashingWriter::new(io::sink());
                io::copy(&mut entry.data.take(entry.size), &mut hashing)?;
                let (_, sha256, bytes) = hashing.finish();
                (sha256, bytes)
            }
        };
        let got = FileEntry { sha256, bytes };
        if &got != expected {
            return Err(refused(
                &entry.path,
                format!(
                    "has sha256 {} and {} bytes; the manifest says {} and {} bytes",
                    got.sha256, got.bytes, expected.sha256, expected.bytes
                ),
            ));
        }
        seen.insert(entry.path, got);
        Ok(())
    })?;
    let manifest = manifest.ok_or_else(|| BackupError::Refused(format!("it has no {MANIFEST}")))?;
    if let Some(missing) = manifest.files.keys().find(|p| !seen.contains_key(*p)) {
        return Err(BackupError::Refused(format!(
            "{missing} is in the manifest but not in the archive (truncated?)"
        )));
    }
    if !seen.contains_key(DB_FILE) {
        return Err(BackupError::Refused(format!("it holds no {DB_FILE}")));
    }
    Ok(manifest)
}

fn refused(path: &str, reason: String) -> ArchiveError {
    ArchiveError::Refused {
        path: path.to_owned(),
        reason,
    }
}

impl App {
    /// Writes a backup of this appliance's data directory to `out` while it serves.
    pub fn backup(&self, keys: bool, out: impl Write) -> Result<Written, BackupError> {
        write(self.engine.store(), &self.config, keys, out)
    }

    /// Checks a restored data directory: every receipt (signature, statement, checkpoint,
    /// inclusion), the log against the backup's checkpoint, and the audit log's chain.
    pub fn verify_restored(
        &self,
        manifest: &Manifest,
    ) -> Result<Vec<CheckResult>, super::AppError> {
        let trust = self.receipt_trust()?;
        let receipts = self.verify_receipts(&trust)?;
        let log = self.check_restored_log(
            &trust,
            manifest.snapshot.log_size,
            manifest.snapshot.checkpoint.as_deref(),
        )?;
        let audit = self.check_audit_chain()?;
        Ok(vec![receipts, log, audit])
    }
}
