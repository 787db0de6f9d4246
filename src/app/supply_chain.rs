//! The supply chain at start: the keys trusted to sign the in-toto layout (every change of
//! that set is audited), the layout itself, and the admission of a signed policy bundle (a
//! release directory, or one installed in the catalog): verified under the layout before it
//! may become active — refused with `features.intoto_verify_enforce`, used with an audited
//! warning without it.

use std::collections::BTreeSet;
use std::path::Path;

use super::AppError;
use super::package::{self, Release, Report};
use crate::attest::intoto::Document;
use crate::attest::keys::PublicKey;
use crate::config::Config;
use crate::domain::audit::{AuditKind, NewAuditEvent};
use crate::domain::package::Kind;
use crate::policy::bundle::PolicyBundle;
use crate::store::Store;

/// The store meta key holding the key ids trusted at the last start.
const KEYS_META: &str = "supply_chain_layout_keys";

/// The layout and the keys trusted to sign it.
pub struct Trust {
    /// The signed layout.
    pub layout: Document,
    /// Trusted layout keys.
    pub keys: Vec<PublicKey>,
}

/// Reads the trusted layout keys of the config and records an audit event when the set
/// differs from the one of the last start.
pub fn layout_keys(config: &Config, store: &Store) -> Result<Vec<PublicKey>, AppError> {
    let mut keys = Vec::new();
    for path in &config.supply_chain.layout_keys {
        let text = std::fs::read_to_string(path).map_err(|e| {
            AppError::Other(format!("supply_chain.layout_keys: {}: {e}", path.display()))
        })?;
        keys.push(PublicKey::from_pem(&text).map_err(|e| {
            AppError::Other(format!("supply_chain.layout_keys: {}: {e}", path.display()))
        })?);
    }
    let now: BTreeSet<String> = keys.iter().map(|k| k.keyid().to_owned()).collect();
    let before: BTreeSet<String> = store
        .meta(KEYS_META)?
        .and_then(|v| String::from_utf8(v).ok())
        .map(|s| {
            s.split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if now != before {
        let added: Vec<&String> = now.difference(&before).collect();
        let removed: Vec<&String> = before.difference(&now).collect();
        let joined = now.iter().cloned().collect::<Vec<_>>().join(",");
        store.write(|w| {
            w.append_audit(NewAuditEvent::system(
                AuditKind::SupplyChainKeysRotated,
                serde_json::json!({"added": added, "removed": removed, "trusted": now}),
            ))?;
            w.set_meta(KEYS_META, joined.as_bytes())
        })?;
        tracing::info!(?added, ?removed, "trusted layout keys changed");
    }
    Ok(keys)
}

/// The configured layout with its trusted keys, or why there is none.
pub fn trust(config: &Config, keys: Vec<PublicKey>) -> Result<Trust, String> {
    let path = config
        .supply_chain
        .layout
        .as_ref()
        .ok_or("no in-toto layout is configured (supply_chain.layout)")?;
    if keys.is_empty() {
        return Err("no key is trusted to sign the layout (supply_chain.layout_keys)".into());
    }
    let bytes =
        std::fs::read(path).map_err(|e| format!("supply_chain.layout: {}: {e}", path.display()))?;
    let layout = Document::parse(&bytes)
        .map_err(|e| format!("supply_chain.layout: {}: {e}", path.display()))?;
    Ok(Trust { layout, keys })
}

impl Trust {
    /// The trusted keys that signed the layout; all trusted keys when none did (so that
    /// verification names each of them as missing).
    fn signing_keys(&self) -> Vec<PublicKey> {
        let signed_by: BTreeSet<String> = self.layout.signature_keyids().into_iter().collect();
        let keys: Vec<PublicKey> = self
            .keys
            .iter()
            .filter(|k| signed_by.contains(k.keyid()))
            .cloned()
            .collect();
        if keys.is_empty() {
            self.keys.clone()
        } else {
            keys
        }
    }

    /// Verifies a release (its files in memory) now. The layout must be signed by at least
    /// one trusted key; every trusted key that signed it must verify.
    pub fn verify_release(&self, release: &Release, archive: &str, kind: Kind) -> Report {
        package::verify_release(
            release,
            archive,
            kind,
            &self.layout,
            &self.signing_keys(),
            jiff::Timestamp::now(),
        )
    }
}

/// Whether a release verifies under `trust` (or why nothing can), every failure, and the
/// `NAME@VERSION` it holds when its archive could be read.
pub fn check_release(
    trust: Result<&Trust, &String>,
    release: &Release,
    archive: &str,
    kind: Kind,
) -> (bool, Vec<String>, Option<String>) {
    match trust {
        Ok(trust) => {
            let report = trust.verify_release(release, archive, kind);
            let reference = report.package.as_ref().map(|p| p.reference());
            (report.valid, report.failures(), reference)
        }
        Err(why) => (false, vec![why.clone()], None),
    }
}

/// The `supply_chain_unverified` audit event of a release that did not verify when it was
/// to be published, installed, loaded or activated (`action`), refused or not.
pub fn unverified_event(
    action: &str,
    kind: Kind,
    package: Option<&str>,
    failures: &[String],
    refused: bool,
) -> NewAuditEvent {
    NewAuditEvent::system(
        AuditKind::SupplyChainUnverified,
        serde_json::json!({
            "action": action,
            "kind": kind,
            "package": package,
            "failures": failures,
            "refused": refused,
        }),
    )
}

/// A policy bundle admitted from a signed release: the bundle, a label for it, and whether
/// it verified.
pub struct AdmittedBundle {
    /// The policies.
    pub bundle: PolicyBundle,
    /// `NAME@VERSION (path)`.
    pub source: String,
    /// Whether its chain verified.
    pub verified: bool,
}

/// Where a policy bundle comes from: `policy.bundle` is a release directory's archive, or
/// `catalog:NAME@VERSION`, a bundle installed in the catalog.
pub const CATALOG_PREFIX: &str = "catalog:";

/// Reads the release `policy.bundle` names: (release, archive file name, where it is).
fn bundle_release(store: &Store, bundle: &Path) -> Result<(Release, String, String), AppError> {
    let text = bundle.to_string_lossy();
    let Some(reference) = text.strip_prefix(CATALOG_PREFIX) else {
        let release = Release::from_dir(bundle)
            .map_err(|e| AppError::Other(format!("policy.bundle: {e}")))?;
        let name = bundle
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok((release, name, bundle.display().to_string()));
    };
    let (name, version) = reference.split_once('@').ok_or_else(|| {
        AppError::Other(format!(
            "policy.bundle {text:?}: write {CATALOG_PREFIX}NAME@VERSION"
        ))
    })?;
    let read = store.read()?;
    let entry = read
        .catalog_entry(Kind::PolicyBundle, name, version)?
        .filter(|e| e.installed.is_some())
        .ok_or_else(|| {
            AppError::Other(format!(
                "policy.bundle {text:?}: no policy bundle {name}@{version} is installed in the \
                 catalog (maestro bundle publish, then maestro bundle install)"
            ))
        })?;
    let tar = read
        .catalog_release(Kind::PolicyBundle, name, version)?
        .ok_or_else(|| {
            AppError::Other(format!("policy.bundle {text:?}: its release is missing"))
        })?;
    let release = Release::from_tar(&tar)
        .map_err(|e| AppError::Other(format!("policy.bundle {text:?}: {e}")))?;
    Ok((release, entry.archive_name(), "catalog".to_owned()))
}

/// Verifies and opens the signed policy bundle `policy.bundle` names (a release directory's
/// archive, or an installed catalog bundle). When it does not verify, an audit event says
/// why, and with `intoto_verify_enforce` nothing is activated.
pub fn admit_bundle(
    config: &Config,
    store: &Store,
    trust: Result<&Trust, &String>,
    bundle: &Path,
) -> Result<AdmittedBundle, AppError> {
    let enforce = config.features.intoto_verify_enforce;
    let (release, archive, place) = bundle_release(store, bundle)?;
    let (verified, failures, reference) =
        check_release(trust, &release, &archive, Kind::PolicyBundle);
    let label = format!(
        "{} ({place})",
        reference.as_deref().unwrap_or("policy bundle")
    );
    if !verified {
        let mut event = unverified_event(
            "activate",
            Kind::PolicyBundle,
            reference.as_deref(),
            &failures,
            enforce,
        );
        event.detail["archive"] = serde_json::json!(bundle.display().to_string());
        store.write(|w| w.append_audit(event).map(|_| ()))?;
        if enforce {
            return Err(AppError::Other(format!(
                "policy.bundle {label} does not verify, and features.intoto_verify_enforce \
                 refuses it:\n  {}",
                failures.join("\n  ")
            )));
        }
        tracing::warn!(bundle = %label, ?failures, "policy bundle does not verify; activating it because intoto_verify_enforce is off");
    }
    let bytes = release.files.get(&archive).ok_or_else(|| {
        AppError::Other(format!(
            "policy.bundle {label}: the release does not hold {archive}"
        ))
    })?;
    let opened =
        package::open(bytes).map_err(|e| AppError::Other(format!("policy.bundle {label}: {e}")))?;
    let bundle = PolicyBundle::from_files(&opened.files)?;
    if opened.meta.policy_digest != Some(bundle.digest()) {
        return Err(AppError::Other(format!(
            "policy.bundle {label}: package.json gives policy digest {:?}, the policies have {}",
            opened.meta.policy_digest,
            bundle.digest()
        )));
    }
    Ok(AdmittedBundle {
        bundle,
        source: label,
        verified,
    })
}
