//! Tar.gz archives. The deterministic [`Writer`]: entries in strictly ascending path order,
//! every header the same but for path and size (mode 0644, or 0600 for a secret; uid/gid 0,
//! no user names, mtime 0), and a gzip header without time or file name, so the same files
//! give the same bytes. Large archives compress on several threads (`gzip.rs`), as
//! deterministically.
//! The checked reader [`read`] (and [`unpack`] on top of it), the only way an archive from
//! outside is opened: it refuses `..`, absolute paths, links, devices and duplicate paths,
//! and stops at limits on file count, sizes and compression ratio. `clippy.toml` bans the
//! unchecked `tar` unpack functions.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};

use crate::domain::ids::Digest;

mod gzip;
#[cfg(feature = "isal")]
mod igzip;

/// What went wrong writing or reading an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The archive is not a gzip-compressed tar, or is truncated.
    #[error("not a readable tar.gz: {0}")]
    Format(String),
    /// An entry is refused (path, type, duplicate).
    #[error("entry {path:?}: {reason}")]
    Refused {
        /// The entry's path as written in the archive.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// A limit was exceeded.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// A writer was given entries out of order.
    #[error("entry {0:?} is not after the previous entry: paths must be strictly ascending")]
    Order(String),
}

/// Limits of the checked reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most regular files.
    pub max_files: u64,
    /// Largest single file, bytes.
    pub max_file_bytes: u64,
    /// Most bytes of all files together.
    pub max_total_bytes: u64,
    /// Most uncompressed bytes per compressed byte (beyond the first MiB).
    pub max_ratio: u64,
}

impl Limits {
    /// Limits for small archives: packages and policy bundles.
    pub const SMALL: Limits = Limits {
        max_files: 4096,
        max_file_bytes: 64 << 20,
        max_total_bytes: 256 << 20,
        max_ratio: 200,
    };
    /// Limits for disclosure packs and evidence bundles.
    pub const LARGE: Limits = Limits {
        max_files: 10_000_000,
        max_file_bytes: 1 << 30,
        max_total_bytes: 64 << 30,
        max_ratio: 200,
    };
}

/// Passes bytes through while hashing and counting them.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, the SHA-256 and the count of what went through.
    pub fn finish(self) -> (W, Digest, u64) {
        let digest = Digest(self.hasher.finalize().into());
        (self.inner, digest, self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Threads for a large archive's compression, and for the work that feeds it: the
/// machine's cores, at most four.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4))
}

/// The gzip stream under a [`Writer`].
enum Gz<W: Write> {
    Serial(GzEncoder<W>),
    Parallel(gzip::ParallelGz<W>),
}

impl<W: Write> Write for Gz<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Gz::Serial(gz) => gz.write(buf),
            Gz::Parallel(gz) => gz.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Gz::Serial(gz) => gz.flush(),
            Gz::Parallel(gz) => gz.flush(),
        }
    }
}

/// Writes a deterministic tar.gz.
pub struct Writer<W: Write> {
    tar: tar::Builder<Gz<W>>,
    last: Option<String>,
    files: u64,
}

impl<W: Write> Writer<W> {
    /// A writer compressing at `level` (0–9) on the calling thread: the bytes of a given
    /// archive never change (packages and bundles are signed by digest).
    pub fn new(out: W, level: u32) -> Self {
        let gz = flate2::GzBuilder::new()
            .operating_system(255)
            .write(out, Compression::new(level.min(9)));
        Self::over(Gz::Serial(gz))
    }

    /// A writer compressing at `level` on `threads` threads, for large archives (disclosure
    /// packs, backups): deterministic too, but not the bytes [`Writer::new`] writes (and,
    /// at the fast levels, other bytes when ISA-L is built in).
    pub fn parallel(out: W, level: u32, threads: usize) -> Self {
        Self::parallel_with(out, gzip::Encoder::for_level(level), threads)
    }

    fn parallel_with(out: W, encoder: gzip::Encoder, threads: usize) -> Self {
        Self::over(Gz::Parallel(gzip::ParallelGz::new(out, encoder, threads)))
    }

    fn over(gz: Gz<W>) -> Self {
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        Writer {
            tar,
            last: None,
            files: 0,
        }
    }

    /// Files written so far.
    pub fn files(&self) -> u64 {
        self.files
    }

    fn check(&mut self, path: &str) -> Result<(), ArchiveError> {
        check_path(path).map_err(|reason| ArchiveError::Refused {
            path: path.into(),
            reason,
        })?;
        if self.last.as_deref().is_some_and(|l| l >= path) {
            return Err(ArchiveError::Order(path.into()));
        }
        self.last = Some(path.to_owned());
        self.files += 1;
        Ok(())
    }

    /// Adds a regular file of `size` bytes read from `data`.
    pub fn add_reader(
        &mut self,
        path: &str,
        size: u64,
        data: impl Read,
    ) -> Result<(), ArchiveError> {
        self.add_reader_mode(path, size, 0o644, data)
    }

    /// [`Writer::add_reader`] with another mode (0600 for a secret).
    pub fn add_reader_mode(
        &mut self,
        path: &str,
        size: u64,
        mode: u32,
        data: impl Read,
    ) -> Result<(), ArchiveError> {
        self.check(path)?;
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        self.tar.append_data(&mut h, path, data.take(size))?;
        Ok(())
    }

    /// Adds a regular file.
    pub fn add(&mut self, path: &str, data: &[u8]) -> Result<(), ArchiveError> {
        self.add_reader(path, data.len() as u64, data)
    }

    /// Ends the archive and returns the output.
    pub fn finish(self) -> Result<W, ArchiveError> {
        Ok(match self.tar.into_inner()? {
            Gz::Serial(gz) => gz.finish()?,
            Gz::Parallel(gz) => gz.finish()?,
        })
    }
}

/// Why a path may not be in an archive, if it may not: it must be relative, made of plain
/// names (no `.` or `..`), UTF-8 without NUL, backslash or control characters.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if path.len() > 1024 {
        return Err("path longer than 1024 bytes".into());
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err("path has a control character or a backslash".into());
    }
    if path.starts_with('/') {
        return Err("absolute path".into());
    }
    for part in path.trim_end_matches('/').split('/') {
        match part {
            "" => return Err("empty path component".into()),
            "." | ".." => return Err(format!("path component {part:?}")),
            _ => {}
        }
    }
    Ok(())
}

/// A regular file of an archive being read.
pub struct Entry<'a> {
    /// Its path (checked by [`check_path`], without a trailing `/`).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its contents (at most `size` bytes).
    pub data: &'a mut dyn Read,
}

/// Counts the compressed bytes read.
struct Counting<R> {
    inner: R,
    bytes: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }
}

/// What a checked read saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Regular files.
    pub files: u64,
    /// Bytes of all files.
    pub bytes: u64,
}

/// Reads a tar.gz, calling `f` with every regular file in archive order. Directory entries
/// and pax global headers are skipped; every other entry type (links, devices, fifos) is
/// refused, as are unsafe and duplicate paths. `f` may stop reading an entry early.
pub fn read<R: Read>(
    input: R,
    limits: &Limits,
    mut f: impl FnMut(Entry<'_>) -> Result<(), ArchiveError>,
) -> Result<Stats, ArchiveError> {
    let compressed = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let counting = Counting {
        inner: input,
        bytes: compressed.clone(),
    };
    let mut archive = tar::Archive::new(MultiGzDecoder::new(io::BufReader::new(counting)));
    let mut seen = BTreeSet::new();
    let mut stats = Stats::default();
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::Format(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::Format(e.to_string()))?;
        let raw = entry.path_bytes();
        let path = String::from_utf8(raw.to_vec()).map_err(|_| ArchiveError::Refused {
            path: String::from_utf8_lossy(&raw).into_owned(),
            reason: "path is not UTF-8".into(),
        })?;
        let refuse = |reason: String| ArchiveError::Refused {
            path: path.clone(),
            reason,
        };
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::XGlobalHeader => continue,
            tar::EntryType::Directory => {
                check_path(&path).map_err(refuse)?;
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink => return Err(refuse("symbolic links are refused".into())),
            tar::EntryType::Link => return Err(refuse("hard links are refused".into())),
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(refuse("device files are refused".into()));
            }
            tar::EntryType::Fifo => return Err(refuse("fifos are refused".into())),
            other => return Err(refuse(format!("entry type {other:?} is refused"))),
        }
        check_path(&path).map_err(refuse)?;
        let path = path.trim_end_matches('/').to_owned();
        if !seen.insert(path.clone()) {
            return Err(ArchiveError::Refused {
                path,
                reason: "appears twice".into(),
            });
        }
        let size = entry.size();
        stats.files += 1;
        stats.bytes = stats.bytes.saturating_add(size);
        if stats.files > limits.max_files {
            return Err(ArchiveError::Limit(format!(
                "more than {} files",
                limits.max_files
            )));
        }
        if size > limits.max_file_bytes {
            return Err(ArchiveError::Limit(format!(
                "{path} has {size} bytes, more than {}",
                limits.max_file_bytes
            )));
        }
        if stats.bytes > limits.max_total_bytes {
            return Err(ArchiveError::Limit(format!(
                "files total more than {} bytes",
                limits.max_total_bytes
            )));
        }
        let allowed = limits
            .max_ratio
            .saturating_mul(compressed.get().max(1 << 20));
        if stats.bytes > allowed {
            return Err(ArchiveError::Limit(format!(
                "more than {} bytes unpacked per compressed byte",
                limits.max_ratio
            )));
        }
        f(Entry {
            path,
            size,
            data: &mut entry,
        })?;
    }
    Ok(stats)
}

/// Unpacks a tar.gz into `target`, which must be an empty directory, through [`read`]:
/// files are created new (never overwritten), directories as needed, nothing else.
pub fn unpack<R: Read>(input: R, target: &Path, limits: &Limits) -> Result<Stats, ArchiveError> {
    if std::fs::read_dir(target)?.next().is_some() {
        return Err(ArchiveError::Io(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} is not empty", target.display()),
        )));
    }
    read(input, limits, |e| {
        let mut dest = PathBuf::from(target);
        for c in Path::new(&e.path).components() {
            match c {
                Component::Normal(p) => dest.push(p),
                _ => {
                    return Err(ArchiveError::Refused {
                        path: e.path.clone(),
                        reason: "unsafe path component".into(),
                    });
                }
            }
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)?;
        let copied = io::copy(&mut e.data.take(e.size), &mut file)?;
        if copied != e.size {
            return Err(ArchiveError::Format(format!(
                "{} ends after {copied} of {} bytes",
                e.path, e.size
            )));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests;
