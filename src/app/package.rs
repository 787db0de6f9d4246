//! Workflow packages and policy bundles on disk. A release directory holds one archive and
//! its evidence:
//!
//! ```text
//! NAME-VERSION.mpkg                    the deterministic archive (package.json + files/)
//! build.KEYID8.link                    in-toto link of `package build`
//! NAME-VERSION.mpkg.intoto.jsonl       SLSA provenance v1, DSSE, signed at `package sign`
//! NAME-VERSION.mpkg.sigstore.json      the same envelope as a Sigstore bundle
//! sign.KEYID8.link                     in-toto link of `package sign`
//! ```
//!
//! `build` and `sign` write them; `verify` checks the in-toto chain under a layout, that the
//! files present are the ones the chain recorded, the provenance and its signer, and the
//! archive's contents against its `package.json`. Archives are read only through
//! `archive::read`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::archive::{self, Limits};
use crate::attest::bundle::sigstore_bundle;
use crate::attest::dsse::Envelope;
use crate::attest::intoto::record::{link, link_file_name, link_paths, record_artifacts};
use crate::attest::intoto::{Body, Document, LinkFile, Verification, verify as intoto_verify};
use crate::attest::keys::{PublicKey, SigningKey};
use crate::attest::slsa::{self, Resource};
use crate::domain::ids::Digest;
use crate::domain::package::{FILES_DIR, Kind, MANIFEST_FILE, META_FILE, PackageMeta};
use crate::domain::validate;
use crate::policy::bundle::PolicyBundle;

#[cfg(test)]
mod tests;

/// The step names of the layout template.
pub const BUILD_STEP: &str = "build";
/// The signing step.
pub const SIGN_STEP: &str = "sign";

/// What a package operation refused, and why.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The source or the arguments are not a valid package.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing files failed.
    #[error("{0}")]
    Io(String),
}

fn io(path: &Path, e: impl std::fmt::Display) -> PackageError {
    PackageError::Io(format!("{}: {e}", path.display()))
}

/// A built archive.
#[derive(Debug, Clone, Serialize)]
pub struct Built {
    /// Its `package.json`.
    pub meta: PackageMeta,
    /// Where it was written.
    pub archive: PathBuf,
    /// Its digest.
    pub digest: Digest,
    /// The build link written beside it.
    pub link: PathBuf,
}

/// Builds the archive of `source` into its release directory `out_root/NAME-VERSION/` and
/// records the build link there, signed by `key`.
/// Policy bundles take their name and version from `name_version`; workflow packages from
/// their `maestro.yaml`.
pub fn build(
    kind: Kind,
    source: &Path,
    name_version: Option<(&str, &str)>,
    key: &SigningKey,
    out_root: &Path,
) -> Result<Built, PackageError> {
    let listed = record_artifacts(source, &[".".to_owned()]).map_err(PackageError::Invalid)?;
    if listed.len() as u64 > Limits::SMALL.max_files {
        return Err(PackageError::Invalid(format!(
            "{} files; a package holds at most {}",
            listed.len(),
            Limits::SMALL.max_files
        )));
    }
    // The files are read once: the archive, package.json and the build link's materials all
    // describe the same bytes.
    let mut contents = BTreeMap::new();
    let mut total = 0u64;
    for path in listed.keys() {
        let bytes = std::fs::read(source.join(path)).map_err(|e| io(&source.join(path), e))?;
        total += bytes.len() as u64;
        if bytes.len() as u64 > Limits::SMALL.max_file_bytes
            || total > Limits::SMALL.max_total_bytes
        {
            return Err(PackageError::Invalid(format!(
                "{path}: a package holds files of at most {} MiB, {} MiB in all",
                Limits::SMALL.max_file_bytes >> 20,
                Limits::SMALL.max_total_bytes >> 20
            )));
        }
        contents.insert(path.clone(), bytes);
    }
    let materials = contents
        .iter()
        .map(|(path, bytes)| {
            let digest = Digest::of(bytes).hex();
            (
                path.clone(),
                BTreeMap::from([("sha256".to_owned(), digest)]),
            )
        })
        .collect();
    let meta = describe(kind, &contents, name_version)?;
    let mut writer = archive::Writer::new(Vec::new(), 9);
    let add_err = |e: archive::ArchiveError| PackageError::Invalid(e.to_string());
    for (path, bytes) in &contents {
        writer
            .add(&format!("{FILES_DIR}{path}"), bytes)
            .map_err(add_err)?;
    }
    let mut meta_json =
        serde_json::to_vec_pretty(&meta).map_err(|e| PackageError::Io(e.to_string()))?;
    meta_json.push(b'\n');
    writer.add(META_FILE, &meta_json).map_err(add_err)?;
    let bytes = writer.finish().map_err(add_err)?;
    let out_dir = &out_root.join(format!("{}-{}", meta.name, meta.version));
    std::fs::create_dir_all(out_dir).map_err(|e| io(out_dir, e))?;
    let archive = out_dir.join(meta.archive_name());
    clear_evidence(out_dir, &archive)?;
    std::fs::write(&archive, &bytes).map_err(|e| io(&archive, e))?;
    let products =
        record_artifacts(out_dir, &[meta.archive_name()]).map_err(PackageError::Invalid)?;
    let command = vec![
        "maestro".into(),
        command_noun(kind).into(),
        "build".into(),
        source.display().to_string(),
    ];
    let link_path = write_link(BUILD_STEP, materials, products, command, key, out_dir)?;
    Ok(Built {
        digest: Digest::of(&bytes),
        meta,
        archive,
        link: link_path,
    })
}

/// Removes the evidence of an earlier build from a release directory: its links, and the
/// provenance and Sigstore bundle of the archive, which a new build makes stale.
fn clear_evidence(dir: &Path, archive: &Path) -> Result<(), PackageError> {
    let entries = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| io(dir, e))?.path();
        let stale = path.extension().is_some_and(|x| x == "link")
            || path == provenance_path(archive)
            || path == sigstore_path(archive);
        if stale {
            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
        }
    }
    Ok(())
}

fn command_noun(kind: Kind) -> &'static str {
    match kind {
        Kind::WorkflowPackage => "package",
        Kind::PolicyBundle => "bundle",
    }
}

/// The `package.json` of a package with these files; refuses what would not load.
fn describe(
    kind: Kind,
    files: &BTreeMap<String, Vec<u8>>,
    name_version: Option<(&str, &str)>,
) -> Result<PackageMeta, PackageError> {
    let digests = files
        .iter()
        .map(|(p, b)| (p.clone(), Digest::of(b)))
        .collect();
    let meta = match kind {
        Kind::WorkflowPackage => {
            let text = files.get(MANIFEST_FILE).ok_or_else(|| {
                PackageError::Invalid(format!(
                    "a workflow package needs {MANIFEST_FILE} at its root"
                ))
            })?;
            let text = std::str::from_utf8(text)
                .map_err(|_| PackageError::Invalid(format!("{MANIFEST_FILE} is not UTF-8")))?;
            // The packages it uses are checked where it runs.
            let ctx = validate::Context {
                catalog: &validate::AnyPackage,
                ..validate::Context::default()
            };
            let valid = validate::load(text, &ctx).map_err(|problems| {
                let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
                PackageError::Invalid(format!(
                    "{MANIFEST_FILE} is not valid:\n{}",
                    lines.join("\n")
                ))
            })?;
            if let Some((name, version)) = name_version
                && (name != valid.manifest.name || version != valid.manifest.version)
            {
                return Err(PackageError::Invalid(format!(
                    "{name}@{version} was asked for, but {MANIFEST_FILE} is {}@{}",
                    valid.manifest.name, valid.manifest.version
                )));
            }
            PackageMeta {
                kind,
                name: valid.manifest.name.clone(),
                version: valid.manifest.version.clone(),
                files: digests,
                policy_digest: None,
            }
        }
        Kind::PolicyBundle => {
            let (name, version) = name_version.ok_or_else(|| {
                PackageError::Invalid("a policy bundle needs a name and a version".into())
            })?;
            let bundle = policy_bundle(files)?;
            PackageMeta {
                kind,
                name: name.to_owned(),
                version: version.to_owned(),
                files: digests,
                policy_digest: Some(bundle.digest()),
            }
        }
    };
    meta.check().map_err(PackageError::Invalid)?;
    Ok(meta)
}

/// The policy bundle of a bundle's files, compiled to be sure it loads.
pub fn policy_bundle(files: &BTreeMap<String, Vec<u8>>) -> Result<PolicyBundle, PackageError> {
    let bundle = PolicyBundle::from_files(files)
        .map_err(|e| PackageError::Invalid(format!("policy bundle: {e}")))?;
    crate::policy::Policies::load(bundle.clone(), crate::policy::Limits::default())
        .map_err(|e| PackageError::Invalid(format!("policy bundle does not compile: {e}")))?;
    Ok(bundle)
}

fn write_link(
    step: &str,
    materials: crate::attest::intoto::rules::Artifacts,
    products: crate::attest::intoto::rules::Artifacts,
    command: Vec<String>,
    key: &SigningKey,
    out_dir: &Path,
) -> Result<PathBuf, PackageError> {
    let doc = Document::sign(
        Body::Link(link(step, materials, products, command)),
        key,
        false,
    )
    .map_err(PackageError::Io)?;
    let path = out_dir.join(link_file_name(step, key.public().keyid()));
    std::fs::write(&path, doc.to_json()).map_err(|e| io(&path, e))?;
    Ok(path)
}

/// An archive read and checked against its `package.json`.
#[derive(Debug, Clone)]
pub struct Opened {
    /// Its `package.json`.
    pub meta: PackageMeta,
    /// Its files (paths relative to `files/`).
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Reads an archive through the checked reader: safe paths, no links or devices, within
/// `Limits::SMALL`; `package.json` valid and listing exactly the files present with their
/// digests.
pub fn open(bytes: &[u8]) -> Result<Opened, PackageError> {
    let mut meta_bytes = None;
    let mut files = BTreeMap::new();
    archive::read(bytes, &Limits::SMALL, |entry| {
        let mut data = Vec::with_capacity(entry.size as usize);
        std::io::Read::read_to_end(entry.data, &mut data)?;
        if entry.path == META_FILE {
            meta_bytes = Some(data);
        } else if let Some(rest) = entry.path.strip_prefix(FILES_DIR) {
            files.insert(rest.to_owned(), data);
        } else {
            return Err(archive::ArchiveError::Refused {
                path: entry.path.clone(),
                reason: format!("a package holds only {META_FILE} and {FILES_DIR}"),
            });
        }
        Ok(())
    })
    .map_err(|e| PackageError::Invalid(format!("archive: {e}")))?;
    let meta_bytes =
        meta_bytes.ok_or_else(|| PackageError::Invalid(format!("archive has no {META_FILE}")))?;
    let meta: PackageMeta = serde_json::from_slice(&meta_bytes)
        .map_err(|e| PackageError::Invalid(format!("{META_FILE}: {e}")))?;
    meta.check()
        .map_err(|e| PackageError::Invalid(format!("{META_FILE}: {e}")))?;
    for (path, digest) in &meta.files {
        match files.get(path) {
            None => {
                return Err(PackageError::Invalid(format!(
                    "{META_FILE} lists {FILES_DIR}{path}, which the archive does not hold"
                )));
            }
            Some(bytes) if Digest::of(bytes) != *digest => {
                return Err(PackageError::Invalid(format!(
                    "{FILES_DIR}{path} has digest {}, {META_FILE} says {digest}",
                    Digest::of(bytes)
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = files.keys().find(|p| !meta.files.contains_key(*p)) {
        return Err(PackageError::Invalid(format!(
            "{FILES_DIR}{extra} is in the archive but not in {META_FILE}"
        )));
    }
    Ok(Opened { meta, files })
}

/// The files `sign` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Signed {
    /// The archive's `package.json`.
    pub meta: PackageMeta,
    /// The archive's digest (the provenance subject).
    pub digest: Digest,
    /// The provenance envelope.
    pub provenance: PathBuf,
    /// The same as a Sigstore bundle.
    pub sigstore_bundle: PathBuf,
    /// The sign link.
    pub link: PathBuf,
}

/// The provenance file of an archive.
pub fn provenance_path(archive: &Path) -> PathBuf {
    with_suffix(archive, ".intoto.jsonl")
}

/// The Sigstore bundle file of an archive.
pub fn sigstore_path(archive: &Path) -> PathBuf {
    with_suffix(archive, ".sigstore.json")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Signs a built archive: SLSA provenance (subject: the archive; dependencies: its files),
/// its Sigstore bundle, and the sign link, all beside the archive.
pub fn sign(archive: &Path, key: &SigningKey) -> Result<Signed, PackageError> {
    let bytes = std::fs::read(archive).map_err(|e| io(archive, e))?;
    let opened = open(&bytes)?;
    let file_name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    if file_name != opened.meta.archive_name() {
        return Err(PackageError::Invalid(format!(
            "{file_name} holds {}, whose archive is named {}",
            opened.meta.reference(),
            opened.meta.archive_name()
        )));
    }
    let digest = Digest::of(&bytes);
    let statement = provenance_statement(&opened.meta, &digest);
    let envelope = slsa::sign(&statement, key).map_err(PackageError::Io)?;
    let provenance = provenance_path(archive);
    let mut line = serde_json::to_string(&envelope).map_err(|e| PackageError::Io(e.to_string()))?;
    line.push('\n');
    std::fs::write(&provenance, line).map_err(|e| io(&provenance, e))?;
    let bundle = sigstore_bundle(&envelope).map_err(|e| PackageError::Io(e.to_string()))?;
    let bundle_path = sigstore_path(archive);
    let mut text =
        serde_json::to_string_pretty(&bundle).map_err(|e| PackageError::Io(e.to_string()))?;
    text.push('\n');
    std::fs::write(&bundle_path, text).map_err(|e| io(&bundle_path, e))?;
    let dir = archive.parent().unwrap_or(Path::new("."));
    let name = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned()
    };
    let materials =
        record_artifacts(dir, std::slice::from_ref(&file_name)).map_err(PackageError::Invalid)?;
    let products = record_artifacts(
        dir,
        &[file_name.clone(), name(&provenance), name(&bundle_path)],
    )
    .map_err(PackageError::Invalid)?;
    let command = vec![
        "maestro".into(),
        command_noun(opened.meta.kind).into(),
        "sign".into(),
        file_name,
    ];
    let link_path = write_link(SIGN_STEP, materials, products, command, key, dir)?;
    Ok(Signed {
        meta: opened.meta,
        digest,
        provenance,
        sigstore_bundle: bundle_path,
        link: link_path,
    })
}

fn provenance_statement(meta: &PackageMeta, digest: &Digest) -> serde_json::Value {
    let mut parameters = serde_json::json!({
        "kind": meta.kind,
        "name": meta.name,
        "version": meta.version,
    });
    if let Some(policy) = &meta.policy_digest {
        parameters["policyDigest"] = serde_json::Value::String(policy.to_string());
    }
    let dependencies: Vec<Resource> = meta
        .files
        .iter()
        .map(|(path, d)| Resource::sha256(path, &d.hex()))
        .collect();
    slsa::statement(
        Resource::sha256(&meta.archive_name(), &digest.hex()),
        parameters,
        &dependencies,
    )
}

/// The outcome of verifying a release directory.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether everything verified.
    pub valid: bool,
    /// The package, when its archive could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<PackageMeta>,
    /// The archive's digest.
    pub digest: Digest,
    /// The in-toto verification.
    pub intoto: Verification,
    /// The checks beyond in-toto, each with what failed.
    pub checks: Vec<crate::attest::receipt::Check>,
}

impl Report {
    /// Every failure, in-toto's first, as one line each.
    pub fn failures(&self) -> Vec<String> {
        let mut failures: Vec<String> = self
            .intoto
            .failures
            .iter()
            .map(|f| f.message.clone())
            .collect();
        failures.extend(
            self.checks
                .iter()
                .filter(|c| c.outcome != crate::attest::receipt::Outcome::Pass)
                .map(|c| format!("{}: {}", c.name, c.detail)),
        );
        failures
    }
}

fn check(name: &str, result: Result<String, String>) -> crate::attest::receipt::Check {
    use crate::attest::receipt::{Check, Outcome};
    match result {
        Ok(detail) => Check {
            name: name.into(),
            outcome: Outcome::Pass,
            detail,
        },
        Err(detail) => Check {
            name: name.into(),
            outcome: Outcome::Fail,
            detail,
        },
    }
}

/// A release in memory: the archive and its evidence (links, provenance, Sigstore bundle),
/// by file name, as a release directory holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Release {
    /// File name → bytes.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Release {
    /// Reads the release directory of `archive`: the archive, its provenance and Sigstore
    /// bundle when present, and every link file beside it.
    pub fn from_dir(archive: &Path) -> Result<Release, PackageError> {
        let mut files = BTreeMap::new();
        let name = |p: &Path| {
            p.file_name()
                .and_then(|n| n.to_str())
                .map(str::to_owned)
                .ok_or_else(|| PackageError::Invalid(format!("{}: not a file name", p.display())))
        };
        files.insert(
            name(archive)?,
            std::fs::read(archive).map_err(|e| io(archive, e))?,
        );
        let dir = archive.parent().unwrap_or(Path::new("."));
        let mut paths = link_paths(dir).map_err(|e| io(dir, e))?;
        paths.extend(
            [provenance_path(archive), sigstore_path(archive)]
                .into_iter()
                .filter(|p| p.exists()),
        );
        for path in paths {
            files.insert(
                name(&path)?,
                std::fs::read(&path).map_err(|e| io(&path, e))?,
            );
        }
        Ok(Release { files })
    }

    /// Reads a release sent as a tar.gz of its directory's files, through the checked
    /// reader within `Limits::SMALL`. Only plain file names at the root are accepted.
    pub fn from_tar(bytes: &[u8]) -> Result<Release, PackageError> {
        let mut files = BTreeMap::new();
        archive::read(bytes, &Limits::SMALL, |entry| {
            if entry.path.contains('/') {
                return Err(archive::ArchiveError::Refused {
                    path: entry.path.clone(),
                    reason: "a release holds files at its root only".into(),
                });
            }
            let mut data = Vec::with_capacity(entry.size as usize);
            std::io::Read::read_to_end(entry.data, &mut data)?;
            files.insert(entry.path, data);
            Ok(())
        })
        .map_err(|e| PackageError::Invalid(format!("release: {e}")))?;
        let release = Release { files };
        release.archive()?;
        Ok(release)
    }

    /// The deterministic tar.gz of the release's files ([`Release::from_tar`] reads it).
    pub fn to_tar(&self) -> Result<Vec<u8>, PackageError> {
        let mut w = archive::Writer::new(Vec::new(), 9);
        for (name, bytes) in &self.files {
            w.add(name, bytes)
                .map_err(|e| PackageError::Io(format!("release: {e}")))?;
        }
        w.finish()
            .map_err(|e| PackageError::Io(format!("release: {e}")))
    }

    /// The archive's file name and kind: the release must hold exactly one `.mpkg` or
    /// `.mbundle`.
    pub fn archive(&self) -> Result<(&str, Kind), PackageError> {
        let found: Vec<(&str, Kind)> = self
            .files
            .keys()
            .filter_map(|n| {
                [Kind::WorkflowPackage, Kind::PolicyBundle]
                    .into_iter()
                    .find(|k| n.ends_with(&format!(".{}", k.extension())))
                    .map(|k| (n.as_str(), k))
            })
            .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(PackageError::Invalid(
                "the release holds no archive (.mpkg or .mbundle)".into(),
            )),
            many => Err(PackageError::Invalid(format!(
                "the release holds {} archives ({}); one is expected",
                many.len(),
                many.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// Verifies the release directory of `archive` under `layout` (signed by every key of
/// `owner_keys`) at `now`; see [`verify_release`].
pub fn verify(
    archive: &Path,
    kind: Kind,
    layout: &Document,
    owner_keys: &[PublicKey],
    now: jiff::Timestamp,
) -> Result<Report, PackageError> {
    let release = Release::from_dir(archive)?;
    let name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    Ok(verify_release(
        &release, name, kind, layout, owner_keys, now,
    ))
}

/// Verifies a release under `layout` (signed by every key of `owner_keys`) at `now`: the
/// in-toto chain from its link files, that the archive `file_name`, provenance and bundle
/// are the ones the sign step recorded, the provenance (signed by a sign functionary,
/// subject the archive), and the archive itself.
pub fn verify_release(
    release: &Release,
    file_name: &str,
    kind: Kind,
    layout: &Document,
    owner_keys: &[PublicKey],
    now: jiff::Timestamp,
) -> Report {
    let empty = Vec::new();
    let bytes = release.files.get(file_name).unwrap_or(&empty);
    let digest = Digest::of(bytes);
    let links: Vec<LinkFile> = release
        .files
        .iter()
        .filter(|(name, _)| is_link_name(name))
        .map(|(name, text)| LinkFile {
            source: name.clone(),
            document: Document::parse(text),
        })
        .collect();
    let intoto = intoto_verify(layout, owner_keys, &links, now);
    let mut checks = Vec::new();

    // The archive and its contents.
    let opened = if release.files.contains_key(file_name) {
        open(bytes)
    } else {
        Err(PackageError::Invalid(format!(
            "the release does not hold {file_name}"
        )))
    };
    checks.push(check(
        "archive",
        match &opened {
            Ok(o) if o.meta.kind != kind => Err(format!(
                "{file_name} is a {}, not a {}",
                o.meta.kind.noun(),
                kind.noun()
            )),
            Ok(o) if o.meta.archive_name() != file_name => Err(format!(
                "{file_name} holds {}, whose archive is named {}",
                o.meta.reference(),
                o.meta.archive_name()
            )),
            Ok(o) => Ok(format!(
                "{} {}: {} files, each matching package.json",
                kind.noun(),
                o.meta.reference(),
                o.meta.files.len()
            )),
            Err(e) => Err(e.to_string()),
        },
    ));

    // The files present are the ones the sign step recorded.
    let provenance = format!("{file_name}.intoto.jsonl");
    let bundle = format!("{file_name}.sigstore.json");
    let recorded = intoto.links.get(SIGN_STEP).map(|l| &l.products);
    let present = matches_recorded(recorded, release, &[file_name, &provenance, &bundle]);
    checks.push(check("recorded", present));

    // The provenance.
    let signers = sign_keys(layout);
    let provenance_result = release
        .files
        .get(&provenance)
        .ok_or_else(|| format!("the release does not hold {provenance}"))
        .and_then(|b| {
            serde_json::from_slice::<Envelope>(b).map_err(|e| format!("provenance: {e}"))
        })
        .and_then(|env| slsa::verify(&env, &signers))
        .and_then(|(p, keyid)| {
            let subject = p
                .subjects
                .iter()
                .find(|s| s.name == file_name)
                .ok_or_else(|| format!("the provenance's subject is not {file_name}"))?;
            if subject.digest.get("sha256") != Some(&digest.hex()) {
                return Err(format!(
                    "the provenance's subject {file_name} has another digest than the archive ({digest})"
                ));
            }
            if let Ok(o) = &opened {
                let deps: BTreeMap<&str, &str> = p
                    .dependencies
                    .iter()
                    .filter_map(|d| d.digest.get("sha256").map(|h| (d.name.as_str(), h.as_str())))
                    .collect();
                let files: BTreeMap<&str, String> =
                    o.meta.files.iter().map(|(k, v)| (k.as_str(), v.hex())).collect();
                let files: BTreeMap<&str, &str> =
                    files.iter().map(|(k, v)| (*k, v.as_str())).collect();
                if deps != files {
                    return Err("the provenance's dependencies are not the archive's files".into());
                }
            }
            Ok(format!(
                "SLSA provenance v1 for {file_name}, signed by {}",
                &keyid[..keyid.len().min(8)]
            ))
        });
    checks.push(check("provenance", provenance_result));

    let valid = intoto.valid
        && checks
            .iter()
            .all(|c| c.outcome == crate::attest::receipt::Outcome::Pass);
    Report {
        valid,
        package: opened.ok().map(|o| o.meta),
        digest,
        intoto,
        checks,
    }
}

/// Whether the release's files `names` (the archive, provenance and bundle) are byte for
/// byte those the sign step recorded, checked in that order.
fn matches_recorded(
    recorded: Option<&crate::attest::intoto::rules::Artifacts>,
    release: &Release,
    names: &[&str],
) -> Result<String, String> {
    let recorded = recorded.ok_or("no verified sign link to compare with")?;
    for name in names {
        let bytes = release
            .files
            .get(*name)
            .ok_or_else(|| format!("the release does not hold {name}"))?;
        let actual = Digest::of(bytes).hex();
        match recorded.get(*name).and_then(|h| h.get("sha256")) {
            Some(hex) if *hex == actual => {}
            Some(hex) => {
                return Err(format!(
                    "{name} has sha256 {actual}, the sign step recorded {hex}"
                ));
            }
            None => return Err(format!("the sign step did not record {name}")),
        }
    }
    Ok("archive, provenance and Sigstore bundle are those the sign step recorded".to_owned())
}

/// The keys the layout allows to sign the sign step (and so the provenance).
fn sign_keys(layout: &Document) -> Vec<PublicKey> {
    let Body::Layout(layout) = &layout.body else {
        return Vec::new();
    };
    layout
        .steps
        .iter()
        .filter(|s| s.name == SIGN_STEP)
        .flat_map(|s| s.pubkeys.iter())
        .filter_map(|k| layout.keys.get(k))
        .filter_map(|entry| entry.public_key().ok())
        .collect()
}

/// Whether a release file is an in-toto link (`*.link`, as [`link_paths`] lists them).
fn is_link_name(name: &str) -> bool {
    Path::new(name).extension().is_some_and(|x| x == "link")
}
