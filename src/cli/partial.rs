//! Files the CLI writes whole or not at all (backups, disclosure packs): written to
//! `PATH.partial`, created new and owner-only (a stale one, or a link left there, is removed,
//! never written through), made durable and renamed over `PATH` when complete, removed when
//! not.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{Exit, fail};

/// A file being written to its `.partial` name.
pub struct PartialFile {
    path: PathBuf,
    partial: PathBuf,
}

impl PartialFile {
    /// The file `path`, written as `path.partial` first.
    pub fn new(path: &Path) -> Self {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        PartialFile {
            path: path.to_owned(),
            partial: PathBuf::from(partial),
        }
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path written to until [`PartialFile::commit`].
    pub fn partial(&self) -> &Path {
        &self.partial
    }

    /// Creates the partial file: new, owner-only.
    pub fn create(&self) -> anyhow::Result<File> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let p = &self.partial;
        match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(fail(Exit::Error, format!("removing {}: {e}", p.display())));
            }
            _ => {}
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(p)
            .map_err(|e| fail(Exit::Error, format!("writing {}: {e}", p.display())))
    }

    /// Makes the file durable and gives it its name.
    pub fn commit(&self) -> anyhow::Result<()> {
        File::open(&self.partial)?.sync_all()?;
        std::fs::rename(&self.partial, &self.path).map_err(|e| {
            fail(
                Exit::Error,
                format!("renaming to {}: {e}", self.path.display()),
            )
        })
    }

    /// Removes the partial file (the command failed).
    pub fn abandon(&self) {
        let _ = std::fs::remove_file(&self.partial);
    }
}
