//! `maestro backup OUT` and `maestro restore BACKUP`: a consistent backup of the data
//! directory, from a serving appliance (`--server`, an appliance-wide admin token) or a
//! local data directory no server has open; and its restore into a new directory, checked
//! against its manifest, then every receipt, the log and the audit chain verified.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::client::Client;
use super::partial::PartialFile;
use super::{Exit, Output, Target, fail};
use crate::app::backup::{self, BackupError, Manifest};
use crate::store::{Store, StoreError};

/// `maestro backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup (a tar.gz; `-` for stdout).
    pub out: PathBuf,
    /// Leave the appliance signing key out (a restored appliance then signs with a new
    /// key; old receipts still verify with the public keys kept in the store).
    #[arg(long)]
    pub without_keys: bool,
    /// Serving appliance to back up (e.g. http://127.0.0.1:7070) instead of the local data
    /// directory.
    #[arg(long, env = "MAESTRO_URL")]
    pub server: Option<String>,
    /// Appliance-wide admin token for --server.
    #[arg(long, env = "MAESTRO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Local data directory (without --server); no server may have it open.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// `maestro restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup (a tar.gz written by `maestro backup`).
    pub backup: PathBuf,
    /// Data directory to restore into: it must be absent or empty (default: the
    /// configured one).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Only check the backup against its manifest; write nothing.
    #[arg(long)]
    pub check: bool,
}

fn backup_error(e: BackupError) -> anyhow::Error {
    match e {
        BackupError::Store(StoreError::Locked(dir)) => fail(
            Exit::Usage,
            format!(
                "data directory {} is in use by a serving appliance: back it up with --server URL --token ADMIN-TOKEN",
                dir.display()
            ),
        ),
        BackupError::Archive(crate::archive::ArchiveError::Io(_)) => {
            fail(Exit::Error, e.to_string())
        }
        BackupError::Refused(_) | BackupError::Archive(_) => fail(Exit::Invalid, e.to_string()),
        BackupError::NotEmpty(_) => fail(Exit::Usage, e.to_string()),
        other => fail(Exit::Error, other.to_string()),
    }
}

/// Where a backup goes: a file (see [`PartialFile`]), or stdout for `-`.
struct Destination(Option<PartialFile>);

impl Destination {
    fn new(path: &Path) -> Self {
        Destination((path.as_os_str() != "-").then(|| PartialFile::new(path)))
    }

    fn open(&self) -> anyhow::Result<Box<dyn std::io::Write + Send>> {
        Ok(match &self.0 {
            None => Box::new(BufWriter::new(std::io::stdout())),
            Some(f) => Box::new(BufWriter::new(f.create()?)),
        })
    }

    fn commit(&self) -> anyhow::Result<()> {
        self.0.as_ref().map_or(Ok(()), PartialFile::commit)
    }

    fn abandon(&self) {
        if let Some(f) = &self.0 {
            f.abandon();
        }
    }

    fn name(&self) -> String {
        self.0
            .as_ref()
            .map_or("stdout".into(), |f| f.path().display().to_string())
    }
}

/// The configuration of a local data directory (`--data-dir`, else the configured one).
fn local_config(
    data_dir: Option<PathBuf>,
    config_file: Option<&Path>,
) -> anyhow::Result<crate::config::Config> {
    let target = Target {
        server: None,
        token: None,
        data_dir,
        tenant: None,
    };
    super::inspect::local_config(&target, config_file)
}

/// Takes a backup.
pub async fn backup(
    args: BackupArgs,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    let dest = Destination::new(&args.out);
    let result = take(&args, &dest, config_file).await;
    let (manifest, sha256, bytes) = match result {
        Ok(r) => r,
        Err(e) => {
            dest.abandon();
            return Err(e);
        }
    };
    dest.commit()?;
    let report = json!({
        "out": dest.name(),
        "sha256": sha256,
        "bytes": bytes,
        "manifest": manifest,
    });
    out.print_err(&report, || {
        let mut s = format!(
            "backup written to {}: {bytes} bytes, sha256 {sha256}\n",
            dest.name()
        );
        if let Some(m) = &manifest {
            let count = |t: &str| m.snapshot.tables.get(t).copied().unwrap_or_default();
            s.push_str(&format!(
                "  store of maestro {}: {} executions, {} receipts, {} decisions, log size {}\n  signing key: {}\n",
                m.version,
                count("executions"),
                count("receipts"),
                count("decisions"),
                m.snapshot.log_size,
                if m.keys {
                    "included (keep this backup secret)"
                } else {
                    "left out"
                }
            ));
        }
        s
    });
    Ok(Exit::Ok)
}

async fn take(
    args: &BackupArgs,
    dest: &Destination,
    config_file: Option<&Path>,
) -> anyhow::Result<(Option<Manifest>, String, u64)> {
    match &args.server {
        Some(server) => {
            let client = Client::new(server, args.token.clone())?;
            let query = [("keys", (!args.without_keys).to_string())];
            // Hashed as it arrives: it must be the archive the server announced.
            let mut w = crate::archive::HashingWriter::new(dest.open()?);
            let headers = client.download("/api/v1/backup", &query, &mut w).await?;
            let (_, sha256, bytes) = w.finish();
            let announced = headers
                .get("x-maestro-backup-sha256")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if sha256.to_string() != announced {
                return Err(fail(
                    Exit::Error,
                    format!(
                        "the backup received has sha256 {sha256}, the server announced {announced:?} (interrupted?)"
                    ),
                ));
            }
            // Read back (not possible on stdout): it checks against its own manifest.
            let Some(written) = &dest.0 else {
                return Ok((None, sha256.to_string(), bytes));
            };
            let partial = written.partial();
            let file = File::open(partial)?;
            let manifest = backup::check(BufReader::new(file)).map_err(backup_error)?;
            Ok((Some(manifest), sha256.to_string(), bytes))
        }
        None => {
            let config = local_config(args.data_dir.clone(), config_file)?;
            if !config.data_dir.join(crate::store::DB_FILE).exists() {
                return Err(fail(
                    Exit::NotFound,
                    format!("{} holds no maestro store", config.data_dir.display()),
                ));
            }
            let keys = !args.without_keys;
            let w = dest.open()?;
            let written = tokio::task::spawn_blocking(move || {
                let store = Store::open(&config.data_dir)?;
                backup::write(&store, &config, keys, w)
            })
            .await?
            .map_err(backup_error)?;
            Ok((
                Some(written.manifest),
                written.sha256.to_string(),
                written.bytes,
            ))
        }
    }
}

/// Restores a backup and verifies it.
pub async fn restore(
    args: RestoreArgs,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    let open = || {
        File::open(&args.backup)
            .map(BufReader::new)
            .map_err(|e| fail(Exit::NotFound, format!("{}: {e}", args.backup.display())))
    };
    if args.check {
        let input = open()?;
        let manifest = tokio::task::spawn_blocking(move || backup::check(input))
            .await?
            .map_err(backup_error)?;
        out.print(&json!({ "manifest": manifest }), || {
            format!(
                "{} checks against its manifest: maestro {}, taken {}, {} files, log size {}\n",
                args.backup.display(),
                manifest.version,
                manifest.created_at,
                manifest.files.len() + 1,
                manifest.snapshot.log_size
            )
        });
        return Ok(Exit::Ok);
    }
    // The configuration without the demo layer: nothing may be written into the target
    // before the restore (a demo layer would be created there).
    let overrides = crate::config::Overrides {
        data_dir: args.data_dir.clone(),
        ..Default::default()
    };
    let config =
        crate::app::resolve_config_without_demo(config_file, &super::env_map(), &overrides)
            .map_err(|e| fail(Exit::Usage, e.to_string()))?;
    let dir = config.data_dir.clone();
    let created = !dir.exists();
    let input = open()?;
    let key_elsewhere = config.signing.key_file.is_some();
    let verified = tokio::task::spawn_blocking(move || {
        let manifest = backup::restore(input, &dir).map_err(backup_error)?;
        // The restored store alone: no engine, no recovery, no data written.
        let checks = Store::open(&dir)
            .map_err(crate::app::AppError::from)
            .and_then(|store| backup::verify(&store, &config, &manifest));
        Ok::<_, anyhow::Error>((dir, manifest, checks))
    })
    .await??;
    let (dir, manifest, checks) = verified;
    let checks = match checks {
        Ok(c) if c.iter().all(|c| c.passed) => c,
        other => {
            backup::clear(&dir, created);
            let why = match other {
                Ok(c) => c
                    .iter()
                    .filter(|c| !c.passed)
                    .map(|c| format!("{}: {}", c.name, c.detail))
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(e) => e.to_string(),
            };
            return Err(fail(
                Exit::Unverified,
                format!(
                    "the restored data does not verify, and was removed from {}: {why}",
                    dir.display()
                ),
            ));
        }
    };
    let report = json!({ "data_dir": dir, "manifest": manifest, "checks": checks });
    out.print(&report, || {
        let mut s = format!(
            "restored into {}: maestro {} backup taken {}\n",
            dir.display(),
            manifest.version,
            manifest.created_at
        );
        for c in &checks {
            s.push_str(&format!("  pass {:<9} {}\n", c.name, c.detail));
        }
        if !manifest.keys {
            s.push_str("  the backup holds no signing key: the first start generates a new one\n");
        } else if key_elsewhere {
            s.push_str(&format!(
                "  the signing key was restored to {}; signing.key_file points elsewhere\n",
                dir.join(backup::KEY_ENTRY).display()
            ));
        }
        s
    });
    Ok(Exit::Ok)
}
