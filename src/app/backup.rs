//! Backup and restore of a data directory. A backup is a tar.gz: `MANIFEST.json` first (the
//! maestro version, the snapshot's table counts, log size and latest signed checkpoint,
//! and the SHA-256 of every other file), then `maestro.redb` (a consistent copy of the
//! store made inside one read transaction while the appliance serves), the signing key
//! under `keys/` (unless left out), the demo layer and `trust/`. The search index and the
//! work directory are derived state and are not backed up.
//!
//! Restore checks every file against the manifest in a staging directory inside the target
//! (which must be empty or absent, but for a `lost+found`) before anything reaches it; on
//! any failure it leaves nothing behind. [`verify`] then checks every receipt, the log and
//! the audit chain on the restored store alone: no engine, no recovery, no data written.
//! Only the first start runs recovery.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::postrelease::{self, CheckResult};
use super::{App, AppError, demo};
use crate::archive::{self, ArchiveError, HashingWriter, Limits};
use crate::attest::receipt::Trust;
use crate::config::Config;
use crate::domain::ids::Digest;
use crate::store::{DB_FILE, SCHEMA_VERSION, Snapshot, Store, StoreError};
use crate::tlog;

/// Name of the manifest entry, the first of every backup.
pub const MANIFEST: &str = "MANIFEST.json";

/// The backup format this build writes and reads.
pub const FORMAT: &str = "maestro-backup/v1";

/// Where the signing key goes in a backup (and in the restored data directory).
pub const KEY_ENTRY: &str = "keys/appliance.pem";

/// Directory of supply-chain trust material in the data directory.
const TRUST_DIR: &str = "trust";

/// Prefix of the staging directory of a backup in the data directory (removed at start
/// when a crash left one).
pub const STAGING_PREFIX: &str = ".backup-";

/// Prefix of the staging directory of a restore in its target.
const RESTORE_PREFIX: &str = ".maestro-restore-";

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
    /// Too little free space for the copy.
    #[error(
        "{path} has {available} bytes free; the backup needs about {needed}: free space or grow the volume"
    )]
    NoSpace {
        /// Where the space is missing.
        path: PathBuf,
        /// Bytes available.
        available: u64,
        /// Bytes needed.
        needed: u64,
    },
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
    /// The data directory it was taken from (absolute): the demo layer names its trust
    /// files by it, and a restore elsewhere renames them.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
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
        } else {
            return Err(BackupError::Refused(format!(
                "{} is not a regular file or a directory (a link?): replace it with the file itself",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Refuses to start a copy when the data volume has less free space than `copies` times
/// the store, plus a margin (the store grows while it is copied).
pub fn ensure_space(store: &Store, copies: u64) -> Result<(), BackupError> {
    let db = store.dir().join(DB_FILE);
    let size = std::fs::metadata(&db).map_err(io_at(&db))?.len();
    let needed = size.saturating_mul(copies).saturating_add(64 << 20);
    if let Ok(v) = rustix::fs::statvfs(store.dir()) {
        let available = v.f_bavail.saturating_mul(v.f_frsize);
        if available < needed {
            return Err(BackupError::NoSpace {
                path: store.dir().to_owned(),
                available,
                needed,
            });
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
    ensure_space(store, 1)?;
    let staging = tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
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
        data_dir: std::path::absolute(&config.data_dir).ok(),
        files,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BackupError::Refused(format!("manifest: {e}")))?;

    let mut writer = archive::Writer::parallel(HashingWriter::new(out), 1, archive::threads());
    writer.add(MANIFEST, &manifest_json)?;
    for (name, path) in &sources {
        let file = File::open(path).map_err(io_at(path))?;
        // Secrets stay owner-only when the archive is unpacked by other tools.
        let mode = if name == KEY_ENTRY || name == demo::FILE {
            0o600
        } else {
            0o644
        };
        writer.add_reader_mode(
            name,
            manifest.files[name].bytes,
            mode,
            io::BufReader::new(file),
        )?;
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
/// `lost+found`): every file is checked against the manifest in a staging directory inside
/// `target` (one filesystem: the files are then renamed into place). Files are created
/// owner-only. On failure nothing is left behind.
pub fn restore(input: impl Read, target: &Path) -> Result<Manifest, BackupError> {
    if !is_empty_dir(target)? {
        return Err(BackupError::NotEmpty(target.to_owned()));
    }
    let created = !target.exists();
    let result = (|| {
        private_dirs(target)?;
        let staging = tempfile::Builder::new()
            .prefix(RESTORE_PREFIX)
            .tempdir_in(target)
            .map_err(io_at(target))?;
        let manifest = unpack_checked(input, Some(staging.path()))?;
        for entry in std::fs::read_dir(staging.path()).map_err(io_at(staging.path()))? {
            let entry = entry.map_err(io_at(staging.path()))?;
            let dest = target.join(entry.file_name());
            std::fs::rename(entry.path(), &dest).map_err(io_at(&dest))?;
        }
        relocate_demo_layer(&manifest, target)?;
        Ok(manifest)
    })();
    if result.is_err() {
        clear(target, created);
    }
    result
}

/// The demo layer names the trust files of the data directory by their absolute paths: a
/// restore elsewhere points them at the restored copies (checked against the manifest
/// before this).
fn relocate_demo_layer(manifest: &Manifest, target: &Path) -> Result<(), BackupError> {
    let layer = target.join(demo::FILE);
    let (Some(from), true) = (&manifest.data_dir, layer.is_file()) else {
        return Ok(());
    };
    let to = std::path::absolute(target).map_err(io_at(target))?;
    if *from == to {
        return Ok(());
    }
    let quoted = |p: &Path| {
        let s = serde_json::to_string(&p.join(TRUST_DIR).display().to_string()).unwrap_or_default();
        // The quoted path without its closing quote: a prefix of each file's path.
        s[..s.len().saturating_sub(1)].to_owned()
    };
    let text = std::fs::read_to_string(&layer).map_err(io_at(&layer))?;
    let moved = text.replace(&quoted(from), &quoted(&to));
    if moved != text {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&layer)
            .map_err(io_at(&layer))?;
        f.write_all(moved.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io_at(&layer))?;
    }
    Ok(())
}

/// Removes what a failed restore put into `target`: all of it when it was created, else
/// everything but a `lost+found`.
pub fn clear(target: &Path, created: bool) {
    if created {
        let _ = std::fs::remove_dir_all(target);
        return;
    }
    if let Ok(entries) = std::fs::read_dir(target) {
        for entry in entries.flatten().filter(|e| e.file_name() != LOST_FOUND) {
            let p = entry.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

/// Creates `dir` and its missing parents owner-only.
fn private_dirs(dir: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_at(dir))
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
                use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
                let dest = dir.join(&entry.path);
                let at =
                    |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", dest.display()));
                if let Some(p) = dest.parent() {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(p)
                        .map_err(at)?;
                }
                let mut file = BufWriter::new(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&dest)
                        .map_err(at)?,
                );
                let mut hashing = HashingWriter::new(&mut file);
                io::copy(&mut entry.data.take(entry.size), &mut hashing).map_err(at)?;
                let (_, sha256, bytes) = hashing.finish();
                file.into_inner()
                    .map_err(|e| e.into_error())
                    .and_then(|f| f.sync_all())
                    .map_err(at)?;
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
}

/// Checks a restored store alone (nothing else opened, no data written): every receipt
/// (signature, statement, checkpoint, inclusion), the log against the backup's checkpoint,
/// and the audit log's chain. `config` gives the trusted keys (`postrelease.trusted_keys`,
/// else every key the store records).
pub fn verify(
    store: &Store,
    config: &Config,
    manifest: &Manifest,
) -> Result<Vec<CheckResult>, AppError> {
    let origin = store
        .meta("log_origin")?
        .and_then(|v| String::from_utf8(v).ok())
        .unwrap_or_default();
    let trust = postrelease::receipt_trust(store, config, &origin)?;
    let receipts = postrelease::verify_receipts(store, &origin, &trust)?;
    let log = check_log(
        store,
        &trust,
        manifest.snapshot.log_size,
        manifest.snapshot.checkpoint.as_deref(),
    )?;
    Ok(vec![receipts, log, check_audit_chain(store)?])
}

/// The log of a restored store: exactly the backup's size; the checkpoint the backup
/// recorded is the latest, is signed by a trusted key and commits to the tree the stored
/// hashes make.
fn check_log(
    store: &Store,
    trust: &Trust,
    recorded_size: u64,
    recorded: Option<&str>,
) -> Result<CheckResult, AppError> {
    let r = store.read()?;
    let size = r.log_size()?;
    let latest = r.latest_checkpoint()?;
    let problem = (|| -> Result<String, String> {
        if size != recorded_size {
            return Err(format!(
                "the log has {size} leaves; the backup recorded {recorded_size}"
            ));
        }
        let (latest_size, note) = match (latest, recorded) {
            (None, None) if size == 0 => return Ok("the log is empty, as backed up".into()),
            (Some(l), Some(_)) => l,
            _ => return Err("the restored checkpoint is not the one the backup recorded".into()),
        };
        if recorded != Some(note.as_str()) || latest_size != size {
            return Err("the latest checkpoint is not the one the backup recorded".into());
        }
        let origin = trust.origin.clone().unwrap_or_default();
        let cp = trust
            .keys
            .iter()
            .find_map(|k| tlog::open_checkpoint(&note, &k.note_verifier(&origin)).ok())
            .ok_or("the checkpoint is not signed by a trusted key")?;
        let hashes = r.log_hashes().map_err(|e| e.to_string())?;
        let root = tlog::root(size, &hashes).map_err(|e| e.to_string())?;
        if cp.size != size || root != cp.root {
            return Err(format!(
                "the stored hashes give root {} at tree size {size}; the checkpoint says {} at {}",
                tlog::hex_hash(&root),
                tlog::hex_hash(&cp.root),
                cp.size
            ));
        }
        Ok(format!(
            "tree size {size}: the backup's signed checkpoint matches the stored tree"
        ))
    })();
    Ok(postrelease::appliance_check("log", size, problem))
}

/// The audit log's hash chain.
fn check_audit_chain(store: &Store) -> Result<CheckResult, AppError> {
    let s = super::report::audit_summary(store, None)?;
    Ok(postrelease::appliance_check(
        "audit",
        s.events,
        if s.chain == "verified" {
            Ok(format!(
                "{} audit events: the hash chain is unbroken",
                s.events
            ))
        } else {
            Err(format!("the audit chain is {}", s.chain))
        },
    ))
}
