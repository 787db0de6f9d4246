//! `maestro verify-receipt`: offline verification of a receipt file.

use std::path::{Path, PathBuf};

use clap::Args;

use super::output::report_text;
use super::{Exit, Output, fail};
use crate::app;
use crate::attest::keys::{PublicKey, SigningKey};
use crate::attest::receipt::{self, Trust};
use crate::config::Overrides;

/// Arguments of `verify-receipt`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The receipt file (`maestro run --receipt-out`, or GET /api/v1/executions/{id}/receipt),
    /// or `-` for standard input.
    pub file: PathBuf,
    /// The keys to trust.
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// The keys an offline verification trusts.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// A trusted public key, PEM (repeatable). `maestro keys show --pem` prints the
    /// appliance's.
    #[arg(long = "key")]
    pub keys: Vec<PathBuf>,
    /// Trusted keys as JSON, from `maestro keys show --output json` or GET /api/v1/keys.
    #[arg(long = "keys")]
    pub keys_json: Option<PathBuf>,
    /// The log origin to expect (from `maestro keys show`).
    #[arg(long)]
    pub origin: Option<String>,
    /// Trust the keys of this local data directory (when no key is given).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub(super) fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| fail(Exit::Usage, format!("reading {}: {e}", path.display())))
}

/// The trusted keys: given as files, or else the local data directory's.
pub(super) fn trusted(
    args: &TrustArgs,
    config_file: Option<&Path>,
) -> anyhow::Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    for path in &args.keys {
        let text = String::from_utf8(read(path)?)
            .map_err(|_| fail(Exit::Usage, format!("{} is not text", path.display())))?;
        keys.push(
            PublicKey::from_pem(&text)
                .map_err(|e| fail(Exit::Usage, format!("{}: {e}", path.display())))?,
        );
    }
    if let Some(path) = &args.keys_json {
        let v: serde_json::Value = serde_json::from_slice(&read(path)?)
            .map_err(|e| fail(Exit::Usage, format!("{}: not JSON: {e}", path.display())))?;
        let list = v["keys"].as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            return Err(fail(
                Exit::Usage,
                format!("{}: no \"keys\" list", path.display()),
            ));
        }
        for k in list {
            let pem = k["pem"].as_str().ok_or_else(|| {
                fail(Exit::Usage, format!("{}: a key has no pem", path.display()))
            })?;
            keys.push(
                PublicKey::from_pem(pem)
                    .map_err(|e| fail(Exit::Usage, format!("{}: {e}", path.display())))?,
            );
        }
    }
    if keys.is_empty() {
        let overrides = Overrides {
            data_dir: args.data_dir.clone(),
            ..Overrides::default()
        };
        if let Ok(resolved) = app::resolve_config(config_file, &super::env_map(), &overrides) {
            let c = resolved.config;
            if c.key_file().exists() {
                keys.push(SigningKey::load(&c.key_file())?.public().clone());
                for t in c.tenants.values() {
                    if let Some(p) = &t.signing_key_file {
                        keys.push(SigningKey::load(p)?.public().clone());
                    }
                }
            }
        }
    }
    if keys.is_empty() {
        return Err(fail(
            Exit::Usage,
            "no trusted key: pass --key FILE (the PEM from `maestro keys show --pem`) or --keys FILE (`maestro keys show --output json`)",
        ));
    }
    Ok(keys)
}

/// `maestro verify-receipt FILE`
pub fn run(args: VerifyArgs, config_file: Option<&Path>, out: &Output) -> anyhow::Result<Exit> {
    let bytes = read(&args.file)?;
    let keys = trusted(&args.trust, config_file)?;
    let report = receipt::verify(
        &bytes,
        &Trust {
            keys,
            origin: args.trust.origin.clone(),
        },
    );
    out.print(&report, || report_text(&report));
    Ok(if report.valid {
        Exit::Ok
    } else {
        Exit::Unverified
    })
}
