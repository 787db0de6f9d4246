//! `maestro package` and `maestro bundle`: build a workflow package or policy bundle into a
//! deterministic archive with its build link, sign it (SLSA provenance, Sigstore bundle,
//! sign link), verify a release directory under the in-toto layout, and publish, install
//! and list releases in a server's catalog.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::client::Client;
use super::output::checks_text;
use super::verify::read;
use super::{Exit, Output, fail};
use crate::app::package::{self, PackageError};
use crate::attest::intoto::Document;
use crate::attest::keys::{PublicKey, SigningKey};
use crate::domain::package::{CatalogEntry, Kind, Verdict};
use serde_json::Value;

/// `maestro package …`
#[derive(Debug, Subcommand)]
pub enum PackageCommand {
    /// Build DIR (with `maestro.yaml` at its root) into `OUT/NAME-VERSION/NAME-VERSION.mpkg`
    /// and record the signed in-toto link of the build step. Same input, same bytes.
    Build {
        /// The package source.
        dir: PathBuf,
        /// The builder's private key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// Where release directories go.
        #[arg(long, default_value = "dist")]
        out_dir: PathBuf,
    },
    /// Sign a built package: SLSA provenance v1 (DSSE and Sigstore bundle) and the signed
    /// in-toto link of the sign step, beside the archive.
    Sign(SignArgs),
    /// Verify a package's release directory: the in-toto chain under the layout, the files
    /// against what the chain recorded, the provenance and the archive. Exit 4 when not.
    Verify(VerifyArgs),
    /// Publish a package's release directory into a server's catalog. The server verifies
    /// it under its layout first; with intoto_verify_enforce it refuses what does not
    /// verify (exit 4, every failure listed).
    Publish(PublishArgs),
    /// Install a published package (NAME@VERSION): the server verifies it again, now.
    Install(InstallArgs),
    /// List the packages of a server's catalog.
    List(ListArgs),
}

/// `maestro bundle …`
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Build DIR (`.rego` files and `data.json`) into
    /// `OUT/NAME-VERSION/NAME-VERSION.mbundle` and record the signed in-toto link of the
    /// build step. The policies must compile. Same input, same bytes.
    #[command(disable_version_flag = true)]
    Build {
        /// The bundle source.
        dir: PathBuf,
        /// Bundle name.
        #[arg(long)]
        name: String,
        /// Bundle version (semantic).
        #[arg(long)]
        version: String,
        /// The builder's private key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// Where release directories go.
        #[arg(long, default_value = "dist")]
        out_dir: PathBuf,
    },
    /// Sign a built bundle, as `package sign`.
    Sign(SignArgs),
    /// Verify a bundle's release directory, as `package verify`.
    Verify(VerifyArgs),
    /// Publish a bundle's release directory into a server's catalog, as `package publish`.
    Publish(PublishArgs),
    /// Install a published bundle (NAME@VERSION), as `package install`.
    Install(InstallArgs),
    /// List the policy bundles of a server's catalog.
    List(ListArgs),
}

/// The server of catalog commands.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server (e.g. http://127.0.0.1:7070).
    #[arg(long, env = "MAESTRO_URL")]
    server: String,
    /// API token (publishing and installing need an appliance-wide administrator's).
    #[arg(long, env = "MAESTRO_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Arguments of `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The archive; its links, provenance and bundle are sent from its directory.
    archive: PathBuf,
    #[command(flatten)]
    server: ServerArgs,
}

/// Arguments of `install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// NAME@VERSION.
    reference: String,
    #[command(flatten)]
    server: ServerArgs,
}

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this name.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

/// Arguments of `sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The archive.
    archive: PathBuf,
    /// The signer's private key (PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
}

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The archive; its links, provenance and bundle are read from its directory.
    archive: PathBuf,
    /// The signed in-toto layout.
    #[arg(long)]
    layout: PathBuf,
    /// A public key (PEM) that must have signed the layout (repeatable).
    #[arg(long = "key", required = true)]
    keys: Vec<PathBuf>,
}

/// `maestro package …`
pub async fn package(cmd: PackageCommand, out: &Output) -> anyhow::Result<Exit> {
    let kind = Kind::WorkflowPackage;
    match cmd {
        PackageCommand::Publish(args) => publish(kind, &args, out).await,
        PackageCommand::Install(args) => install(kind, &args, out).await,
        PackageCommand::List(args) => list(kind, &args, out).await,
        PackageCommand::Build { dir, key, out_dir } => {
            build(Kind::WorkflowPackage, &dir, None, &key, &out_dir, out)
        }
        PackageCommand::Sign(args) => sign(&args, out),
        PackageCommand::Verify(args) => verify(Kind::WorkflowPackage, &args, out),
    }
}

/// `maestro bundle …`
pub async fn bundle(cmd: BundleCommand, out: &Output) -> anyhow::Result<Exit> {
    let kind = Kind::PolicyBundle;
    match cmd {
        BundleCommand::Publish(args) => publish(kind, &args, out).await,
        BundleCommand::Install(args) => install(kind, &args, out).await,
        BundleCommand::List(args) => list(kind, &args, out).await,
        BundleCommand::Build {
            dir,
            name,
            version,
            key,
            out_dir,
        } => build(
            Kind::PolicyBundle,
            &dir,
            Some((&name, &version)),
            &key,
            &out_dir,
            out,
        ),
        BundleCommand::Sign(args) => sign(&args, out),
        BundleCommand::Verify(args) => verify(Kind::PolicyBundle, &args, out),
    }
}

fn refused(e: PackageError) -> anyhow::Error {
    match e {
        PackageError::Invalid(m) => fail(Exit::Invalid, m),
        PackageError::Io(m) => fail(Exit::Error, m),
    }
}

fn build(
    kind: Kind,
    dir: &Path,
    name_version: Option<(&str, &str)>,
    key: &Path,
    out_dir: &Path,
    out: &Output,
) -> anyhow::Result<Exit> {
    let key = signing_key(key)?;
    let built = package::build(kind, dir, name_version, &key, out_dir).map_err(refused)?;
    out.print(&built, || {
        format!(
            "{} {} {}\n  {}\n  {}\n",
            kind.noun(),
            built.meta.reference(),
            built.digest,
            built.archive.display(),
            built.link.display()
        )
    });
    Ok(Exit::Ok)
}

fn sign(args: &SignArgs, out: &Output) -> anyhow::Result<Exit> {
    let key = signing_key(&args.key)?;
    let signed = package::sign(&args.archive, &key).map_err(refused)?;
    out.print(&signed, || {
        format!(
            "signed {} {}\n  {}\n  {}\n  {}\n",
            signed.meta.reference(),
            signed.digest,
            signed.provenance.display(),
            signed.sigstore_bundle.display(),
            signed.link.display()
        )
    });
    Ok(Exit::Ok)
}

fn verify(kind: Kind, args: &VerifyArgs, out: &Output) -> anyhow::Result<Exit> {
    let layout = Document::parse(&read(&args.layout)?)
        .map_err(|e| fail(Exit::Unverified, format!("{}: {e}", args.layout.display())))?;
    let keys = args
        .keys
        .iter()
        .map(|k| public_key(k))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = package::verify(&args.archive, kind, &layout, &keys, jiff::Timestamp::now())
        .map_err(|e| fail(Exit::Usage, e.to_string()))?;
    out.print(&report, || report_text(&report));
    Ok(if report.valid {
        Exit::Ok
    } else {
        Exit::Unverified
    })
}

fn report_text(report: &package::Report) -> String {
    let mut out = String::new();
    if let Some(p) = &report.package {
        out.push_str(&format!(
            "{} {} {}\n",
            p.kind.noun(),
            p.reference(),
            report.digest
        ));
    }
    let intoto = report.intoto.text();
    for line in intoto
        .lines()
        .filter(|l| !l.starts_with("the supply chain"))
    {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&checks_text(&report.checks));
    let noun = report.package.as_ref().map_or("package", |p| p.kind.noun());
    let verdict = if report.valid {
        "verifies"
    } else {
        "does NOT verify"
    };
    out.push_str(&format!("the {noun} {verdict}\n"));
    out
}

fn client(args: &ServerArgs) -> anyhow::Result<Client> {
    Client::new(&args.server, args.token.clone())
}

async fn publish(kind: Kind, args: &PublishArgs, out: &Output) -> anyhow::Result<Exit> {
    let release = package::Release::from_dir(&args.archive).map_err(refused)?;
    match release.archive().map_err(refused)? {
        (_, k) if k != kind => {
            return Err(fail(
                Exit::Usage,
                format!(
                    "{} is a {}: publish it with maestro {}",
                    args.archive.display(),
                    k.noun(),
                    if k == Kind::PolicyBundle {
                        "bundle publish"
                    } else {
                        "package publish"
                    }
                ),
            ));
        }
        _ => {}
    }
    let body = release.to_tar().map_err(refused)?;
    let (status, entry): (u16, CatalogEntry) = client(&args.server)?
        .post(CATALOG, &[], "application/gzip", body)
        .await?;
    out.print(&entry, || {
        let what = if status == 201 {
            "published"
        } else {
            "already published, unchanged:"
        };
        format!("{what} {}", entry_text(&entry))
    });
    Ok(Exit::Ok)
}

async fn install(kind: Kind, args: &InstallArgs, out: &Output) -> anyhow::Result<Exit> {
    let (name, version) = args.reference.split_once('@').ok_or_else(|| {
        fail(
            Exit::Usage,
            format!("{:?}: write NAME@VERSION", args.reference),
        )
    })?;
    let path = format!("{CATALOG}/{}/{name}/{version}/install", kind.as_str());
    let (_, entry): (u16, CatalogEntry) = client(&args.server)?
        .post(&path, &[], "application/json", Vec::new())
        .await?;
    out.print(&entry, || format!("installed {}", entry_text(&entry)));
    Ok(Exit::Ok)
}

async fn list(kind: Kind, args: &ListArgs, out: &Output) -> anyhow::Result<Exit> {
    let mut query = vec![("kind", kind.as_str().to_owned())];
    if let Some(n) = &args.name {
        query.push(("name", n.clone()));
    }
    let list: Value = client(&args.server)?.get(CATALOG, &query).await?;
    let entries: Vec<CatalogEntry> = serde_json::from_value(list["items"].clone())
        .map_err(|e| fail(Exit::Error, format!("the catalog's answer: {e}")))?;
    out.print(&entries, || {
        if entries.is_empty() {
            return format!("no {} in the catalog", kind.noun());
        }
        entries
            .iter()
            .map(entry_text)
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(Exit::Ok)
}

const CATALOG: &str = "/api/v1/catalog";

/// One entry: reference, digest, and its verdicts.
fn entry_text(e: &CatalogEntry) -> String {
    let verdict = |v: &Verdict| {
        let mut s = format!(
            "{} by {} at {}",
            if v.verified {
                "verified"
            } else {
                "NOT verified"
            },
            v.by,
            v.at.strftime("%Y-%m-%d %H:%M:%SZ")
        );
        for f in &v.failures {
            s.push_str(&format!("\n      {f}"));
        }
        s
    };
    let mut s = format!(
        "{} {} {}\n  published: {}",
        e.kind.noun(),
        e.reference(),
        e.digest,
        verdict(&e.published)
    );
    if let Some(i) = &e.installed {
        s.push_str(&format!("\n  installed: {}", verdict(i)));
    }
    s
}

pub(super) fn signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    SigningKey::load(path).map_err(|e| fail(Exit::Usage, format!("{}: {e}", path.display())))
}

pub(super) fn public_key(path: &Path) -> anyhow::Result<PublicKey> {
    let text = String::from_utf8(read(path)?)
        .map_err(|_| fail(Exit::Usage, format!("{} is not text", path.display())))?;
    PublicKey::from_pem(&text).map_err(|e| fail(Exit::Usage, format!("{}: {e}", path.display())))
}
