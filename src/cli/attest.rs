//! `maestro attest`: in-toto layouts signed from the repository's template, links recorded
//! for steps done elsewhere, and verification of a layout with its links — interoperable
//! with the reference `in-toto-run` and `in-toto-verify`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::package::{public_key, signing_key};
use super::verify::read;
use super::{Exit, Output, fail};
use crate::attest::intoto::record::{Template, link, link_file_name, link_paths, record_artifacts};
use crate::attest::intoto::{Body, Document, LinkFile, verify};
use crate::attest::keys::PublicKey;

/// `maestro attest …`
#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Sign an in-toto layout made from a template (default
    /// `docs/provenance/INTOTO_LAYOUT.yaml`) with the functionaries' public keys.
    Layout {
        /// The layout template (YAML).
        #[arg(long, default_value = "docs/provenance/INTOTO_LAYOUT.yaml")]
        template: PathBuf,
        /// The layout owner's private key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// `ROLE=PUBLIC.pem`: a functionary role of the template and its key (repeatable).
        #[arg(long = "functionary", value_name = "ROLE=PEM")]
        functionaries: Vec<String>,
        /// Expiry, `YYYY-MM-DDTHH:MM:SSZ` (default: one year from now).
        #[arg(long)]
        expires: Option<String>,
        /// Write a DSSE envelope instead of a classic metablock.
        #[arg(long)]
        dsse: bool,
        /// Where to write the layout.
        #[arg(long)]
        out: PathBuf,
    },
    /// Record a signed link for a step performed elsewhere: the hashes of its materials and
    /// products (files or directories, relative to --base). The command after `--` is
    /// recorded, never run.
    Link {
        /// The step name.
        #[arg(long)]
        step: String,
        /// The functionary's private key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// A material path (repeatable).
        #[arg(long = "material")]
        materials: Vec<String>,
        /// A product path (repeatable).
        #[arg(long = "product")]
        products: Vec<String>,
        /// The directory paths are relative to.
        #[arg(long, default_value = ".")]
        base: PathBuf,
        /// Write a DSSE envelope instead of a classic metablock.
        #[arg(long)]
        dsse: bool,
        /// Directory for `STEP.KEYID8.link`.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
        /// The command the step ran (recorded only).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Verify a layout and its links: layout signatures and expiry, link signatures and
    /// thresholds, artifact rules. Exits 4 when anything fails, listing every failure.
    Verify {
        /// The signed layout.
        #[arg(long)]
        layout: PathBuf,
        /// A public key (PEM) that must have signed the layout (repeatable).
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// A link file (repeatable); links are matched to steps by their name.
        #[arg(long = "link")]
        links: Vec<PathBuf>,
        /// A directory whose `*.link` files are the links.
        #[arg(long)]
        link_dir: Option<PathBuf>,
    },
}

/// `maestro attest …`
pub fn attest(cmd: AttestCommand, out: &Output) -> anyhow::Result<Exit> {
    match cmd {
        AttestCommand::Layout {
            template,
            key,
            functionaries,
            expires,
            dsse,
            out: path,
        } => {
            let text = String::from_utf8(read(&template)?)
                .map_err(|_| fail(Exit::Usage, format!("{} is not text", template.display())))?;
            let template = Template::parse(&text)
                .map_err(|e| fail(Exit::Usage, format!("{}: {e}", template.display())))?;
            let owner = signing_key(&key)?;
            let mut roles: BTreeMap<String, Vec<PublicKey>> = BTreeMap::new();
            for spec in &functionaries {
                let (role, file) = spec.split_once('=').ok_or_else(|| {
                    fail(
                        Exit::Usage,
                        format!("--functionary {spec:?}: expected ROLE=PUBLIC.pem"),
                    )
                })?;
                roles
                    .entry(role.to_owned())
                    .or_default()
                    .push(public_key(Path::new(file))?);
            }
            let expires = match expires {
                Some(text) => crate::attest::intoto::verify::parse_expires(&text)
                    .map_err(|e| fail(Exit::Usage, format!("--expires: {e}")))?,
                None => jiff::Timestamp::now()
                    .checked_add(jiff::SignedDuration::from_hours(24 * 365))
                    .map_err(|e| fail(Exit::Error, e.to_string()))?,
            };
            let layout = template.layout(&roles, expires).map_err(|failures| {
                let lines: Vec<String> = failures.into_iter().map(|f| f.message).collect();
                fail(
                    Exit::Usage,
                    format!("the layout is refused:\n  {}", lines.join("\n  ")),
                )
            })?;
            let doc = Document::sign(Body::Layout(layout.clone()), &owner, dsse)
                .map_err(|e| fail(Exit::Error, e))?;
            write(&path, &doc.to_json())?;
            out.print(
                &serde_json::json!({
                    "layout": path,
                    "keyid": owner.public().keyid(),
                    "expires": layout.expires,
                    "steps": layout.steps.iter().map(|s| &s.name).collect::<Vec<_>>(),
                }),
                || {
                    format!(
                        "layout {} signed by {}, expires {}\n",
                        path.display(),
                        owner.public().keyid(),
                        layout.expires
                    )
                },
            );
            Ok(Exit::Ok)
        }
        AttestCommand::Link {
            step,
            key,
            materials,
            products,
            base,
            dsse,
            out_dir,
            command,
        } => {
            let key = signing_key(&key)?;
            let materials =
                record_artifacts(&base, &materials).map_err(|e| fail(Exit::Usage, e))?;
            let products = record_artifacts(&base, &products).map_err(|e| fail(Exit::Usage, e))?;
            let (m, p) = (materials.len(), products.len());
            let doc = Document::sign(
                Body::Link(link(&step, materials, products, command)),
                &key,
                dsse,
            )
            .map_err(|e| fail(Exit::Error, e))?;
            let path = out_dir.join(link_file_name(&step, key.public().keyid()));
            write(&path, &doc.to_json())?;
            out.print(
                &serde_json::json!({"link": path, "step": step, "materials": m, "products": p}),
                || format!("link {} ({m} materials, {p} products)\n", path.display()),
            );
            Ok(Exit::Ok)
        }
        AttestCommand::Verify {
            layout,
            keys,
            mut links,
            link_dir,
        } => {
            let layout_doc = Document::parse(&read(&layout)?)
                .map_err(|e| fail(Exit::Unverified, format!("{}: {e}", layout.display())))?;
            let keys = keys
                .iter()
                .map(|k| public_key(k))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if let Some(dir) = link_dir {
                links.extend(
                    link_paths(&dir)
                        .map_err(|e| fail(Exit::Usage, format!("{}: {e}", dir.display())))?,
                );
            }
            let mut files = Vec::new();
            for path in &links {
                files.push(LinkFile {
                    source: path.display().to_string(),
                    document: Document::parse(&read(path)?),
                });
            }
            let report = verify(&layout_doc, &keys, &files, jiff::Timestamp::now());
            out.print(&report, || report.text());
            Ok(if report.valid {
                Exit::Ok
            } else {
                Exit::Unverified
            })
        }
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)
        .map_err(|e| fail(Exit::Error, format!("writing {}: {e}", path.display())))
}
