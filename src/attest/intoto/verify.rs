//! in-toto verification of a layout and its links: the reference algorithm (layout
//! signatures, expiry, link signatures and thresholds, agreement of threshold links, artifact
//! rules) with stricter checks (exact fields, key ids recomputed, no inspections, links
//! matched to steps by name, strict rule lists). Every failure is collected, not only the
//! first, each saying which check, step and file it concerns.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::model::{Body, Document, Layout, Link};
use super::rules::{LinkArtifacts, Rule, Side, verify_item_rules};
use crate::attest::keys::PublicKey;

/// Which check failed, in the reference's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The layout is malformed or not strict.
    Layout,
    /// A layout signature is missing or wrong.
    LayoutSignature,
    /// The layout has expired.
    LayoutExpired,
    /// A link is malformed, for an unknown step or misnamed.
    Link,
    /// A step has fewer validly signed links than its threshold.
    Threshold,
    /// The links of a threshold step record different artifacts.
    LinksDisagree,
    /// An artifact rule failed.
    Rule,
}

/// One failure.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The check.
    pub check: Check,
    /// The step, when the failure concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What failed.
    pub message: String,
    /// Supporting lines (rule traces, rejected links).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<String>,
}

/// A link file to verify, with the name it came from.
#[derive(Debug, Clone)]
pub struct LinkFile {
    /// Where the link came from (its file name), for messages.
    pub source: String,
    /// The parsed link, or why it could not be parsed.
    pub document: Result<Document, String>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Whether everything verified.
    pub valid: bool,
    /// Steps whose links verified, with the functionaries that signed them.
    pub steps: Vec<StepOutcome>,
    /// Everything that failed.
    pub failures: Vec<Failure>,
    /// What the reference also only warns about (a command other than the expected one).
    pub warnings: Vec<String>,
    /// The artifacts of each verified step's link (the one its rules were applied to).
    #[serde(skip)]
    pub links: BTreeMap<String, LinkArtifacts>,
}

/// A step's verified links.
#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    /// Step name.
    pub name: String,
    /// Key ids of the functionaries whose links verified.
    pub signed_by: Vec<String>,
    /// The threshold.
    pub threshold: i64,
}

/// A layout's structure checked: its keys, steps and parsed rules.
struct Checked<'a> {
    layout: &'a Layout,
    keys: BTreeMap<String, PublicKey>,
    rules: BTreeMap<String, (Vec<Rule>, Vec<Rule>)>,
}

fn failure(check: Check, step: Option<&str>, message: impl Into<String>) -> Failure {
    Failure {
        check,
        step: step.map(str::to_owned),
        message: message.into(),
        detail: Vec::new(),
    }
}

/// Checks a layout's structure as the appliance requires it: every problem found.
pub fn check(layout: &Layout) -> Vec<Failure> {
    let mut failures = Vec::new();
    check_layout(layout, &mut failures);
    failures
}

fn check_layout<'a>(layout: &'a Layout, failures: &mut Vec<Failure>) -> Checked<'a> {
    let mut keys = BTreeMap::new();
    for (keyid, entry) in &layout.keys {
        if *keyid != entry.keyid {
            failures.push(failure(
                Check::Layout,
                None,
                format!("keys[{keyid}] carries keyid {}", entry.keyid),
            ));
            continue;
        }
        match entry.public_key() {
            Ok(key) => {
                keys.insert(keyid.clone(), key);
            }
            Err(e) => failures.push(failure(Check::Layout, None, format!("keys[{keyid}]: {e}"))),
        }
    }
    if !layout.inspect.is_empty() {
        failures.push(failure(
            Check::Layout,
            None,
            "the layout has inspections; they run commands on the verifying machine, which \
             this verifier never does (\"inspect\" must be [])",
        ));
    }
    if layout.steps.is_empty() {
        failures.push(failure(Check::Layout, None, "the layout has no steps"));
    }
    let mut rules = BTreeMap::new();
    for (i, step) in layout.steps.iter().enumerate() {
        let at = Some(step.name.as_str());
        if step.type_ != "step" {
            failures.push(failure(
                Check::Layout,
                at,
                format!("steps[{i}]._type is {:?}, expected \"step\"", step.type_),
            ));
        }
        if rules.contains_key(&step.name) {
            failures.push(failure(
                Check::Layout,
                at,
                format!("steps[{i}]: there is already a step named {:?}", step.name),
            ));
            continue;
        }
        if step.threshold < 1 {
            failures.push(failure(
                Check::Layout,
                at,
                format!(
                    "steps[{i}].threshold is {}; it must be at least 1",
                    step.threshold
                ),
            ));
        }
        for keyid in &step.pubkeys {
            if !layout.keys.contains_key(keyid) {
                failures.push(failure(
                    Check::Layout,
                    at,
                    format!("steps[{i}].pubkeys names key {keyid}, which \"keys\" does not list"),
                ));
            }
        }
        let mut parse = |side: Side, list: &[Vec<String>]| -> Vec<Rule> {
            let mut parsed = Vec::new();
            for (r, words) in list.iter().enumerate() {
                match Rule::parse(words) {
                    Ok(rule) => parsed.push(rule),
                    Err(e) => failures.push(failure(
                        Check::Layout,
                        at,
                        format!("steps[{i}].{}[{r}]: {e}", side.rules_field()),
                    )),
                }
            }
            if !parsed.last().is_some_and(Rule::is_disallow_all) {
                failures.push(failure(
                    Check::Layout,
                    at,
                    format!(
                        "steps[{i}].{} does not end with [\"DISALLOW\", \"*\"], so artifacts \
                         no rule matches would be accepted",
                        side.rules_field()
                    ),
                ));
            }
            parsed
        };
        let materials = parse(Side::Materials, &step.expected_materials);
        let products = parse(Side::Products, &step.expected_products);
        rules.insert(step.name.clone(), (materials, products));
    }
    Checked {
        layout,
        keys,
        rules,
    }
}

/// Parses `expires` in the one form the reference accepts: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_expires(text: &str) -> Result<jiff::Timestamp, String> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(format!(
            "expires {text:?} is not of the form YYYY-MM-DDTHH:MM:SSZ"
        ));
    }
    text.parse()
        .map_err(|e| format!("expires {text:?} is not a valid time: {e}"))
}

/// Verifies `layout` (signed by every key of `layout_keys`) and `links` at time `now`.
pub fn verify(
    layout: &Document,
    layout_keys: &[PublicKey],
    links: &[LinkFile],
    now: jiff::Timestamp,
) -> Verification {
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    let done = |failures: Vec<Failure>, warnings, steps, links| Verification {
        valid: failures.is_empty(),
        steps,
        failures,
        warnings,
        links,
    };
    let Body::Layout(body) = &layout.body else {
        failures.push(failure(
            Check::Layout,
            None,
            "the layout file holds a link, not a layout",
        ));
        return done(failures, warnings, Vec::new(), BTreeMap::new());
    };
    if layout_keys.is_empty() {
        failures.push(failure(
            Check::LayoutSignature,
            None,
            "no layout key was given to verify the layout with",
        ));
    }
    for key in layout_keys {
        if let Err(e) = layout.verify_signature(key) {
            failures.push(failure(
                Check::LayoutSignature,
                None,
                format!("layout: {e}"),
            ));
        }
    }
    if !failures.is_empty() {
        // Nothing in a layout that does not verify can be trusted.
        return done(failures, warnings, Vec::new(), BTreeMap::new());
    }
    let checked = check_layout(body, &mut failures);
    if !failures.is_empty() {
        return done(failures, warnings, Vec::new(), BTreeMap::new());
    }
    match parse_expires(&body.expires) {
        Ok(expires) if expires <= now => failures.push(failure(
            Check::LayoutExpired,
            None,
            format!("the layout expired at {}", body.expires),
        )),
        Ok(_) => {}
        Err(e) => failures.push(failure(Check::Layout, None, e)),
    }
    let (steps, chosen) = verify_links(&checked, links, &mut failures, &mut warnings);
    if failures.iter().all(|f| f.check == Check::LayoutExpired) {
        verify_rules(&checked, &chosen, &mut failures);
    }
    done(failures, warnings, steps, chosen)
}

/// Link signatures, thresholds and agreement; returns each step's outcome and the link its
/// rules apply to.
fn verify_links(
    checked: &Checked<'_>,
    links: &[LinkFile],
    failures: &mut Vec<Failure>,
    warnings: &mut Vec<String>,
) -> (Vec<StepOutcome>, BTreeMap<String, LinkArtifacts>) {
    // Per step: verified links by key id, and why other links were rejected.
    let mut valid: BTreeMap<&str, Vec<(String, &Link, &str)>> = BTreeMap::new();
    let mut rejected: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut seen_any: BTreeSet<&str> = BTreeSet::new();
    for file in links {
        let source = file.source.as_str();
        let document = match &file.document {
            Ok(d) => d,
            Err(e) => {
                failures.push(failure(Check::Link, None, format!("{source}: {e}")));
                continue;
            }
        };
        let Body::Link(link) = &document.body else {
            failures.push(failure(
                Check::Link,
                None,
                format!("{source}: holds a layout where a link is expected"),
            ));
            continue;
        };
        let Some(step) = checked.layout.steps.iter().find(|s| s.name == link.name) else {
            failures.push(failure(
                Check::Link,
                None,
                format!(
                    "{source}: is a link for step {:?}, which the layout does not have",
                    link.name
                ),
            ));
            continue;
        };
        let at = Some(step.name.as_str());
        seen_any.insert(&step.name);
        let authorized: Vec<&PublicKey> = step
            .pubkeys
            .iter()
            .filter_map(|k| checked.keys.get(k))
            .collect();
        let mut reasons = Vec::new();
        let mut signer = None;
        for key in &authorized {
            match document.verify_signature(key) {
                Ok(()) => {
                    signer = Some(key.keyid().to_owned());
                    break;
                }
                Err(e) if !e.starts_with("no signature") => reasons.push(e),
                Err(_) => {}
            }
        }
        let Some(keyid) = signer else {
            let why = if reasons.is_empty() {
                format!(
                    "{source}: signed by {}, none of which may sign step {:?}",
                    short_keyids(&document.signature_keyids()),
                    step.name
                )
            } else {
                format!(
                    "{source}: {} (changed after signing, or signed by another key)",
                    reasons.join("; ")
                )
            };
            rejected.entry(&step.name).or_default().push(why);
            continue;
        };
        if let Some(stem) = source
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".link"))
        {
            // The reference finds links only as STEP.KEYID8.link: a file named otherwise
            // would not be found there.
            if let Some((named_step, prefix)) = stem.rsplit_once('.')
                && prefix.len() == 8
                && prefix.bytes().all(|b| b.is_ascii_hexdigit())
                && (named_step != step.name || !keyid.starts_with(prefix))
            {
                failures.push(failure(
                    Check::Link,
                    at,
                    format!(
                        "{source}: the file name says step {named_step:?} by key {prefix}, but \
                         the link is step {:?} signed by {}",
                        step.name,
                        &keyid[..8]
                    ),
                ));
            }
        }
        let list = valid.entry(&step.name).or_default();
        if list.iter().any(|(k, _, _)| *k == keyid) {
            failures.push(failure(
                Check::Link,
                at,
                format!(
                    "{source}: a second link for step {:?} by key {}",
                    step.name,
                    &keyid[..8]
                ),
            ));
            continue;
        }
        list.push((keyid, link, source));
    }
    let mut outcomes = Vec::new();
    let mut chosen = BTreeMap::new();
    for step in &checked.layout.steps {
        let at = Some(step.name.as_str());
        let links = valid.remove(step.name.as_str()).unwrap_or_default();
        let found = links.len() as i64;
        if found < step.threshold {
            let mut f = if seen_any.contains(step.name.as_str()) {
                failure(
                    Check::Threshold,
                    at,
                    format!(
                        "step {:?} requires at least {} link(s) validly signed by different \
                         authorized functionaries; found {found}",
                        step.name, step.threshold
                    ),
                )
            } else {
                failure(
                    Check::Threshold,
                    at,
                    format!(
                        "link not found: step {:?} requires {} link(s), none was given",
                        step.name, step.threshold
                    ),
                )
            };
            f.detail = rejected.remove(step.name.as_str()).unwrap_or_default();
            failures.push(f);
            continue;
        }
        for why in rejected.remove(step.name.as_str()).unwrap_or_default() {
            warnings.push(format!("ignored {why}"));
        }
        let (_, first, first_source) = links[0];
        for (_, other, other_source) in &links[1..] {
            if other.materials != first.materials || other.products != first.products {
                failures.push(failure(
                    Check::LinksDisagree,
                    at,
                    format!(
                        "links {first_source} and {other_source} of step {:?} record different \
                         artifacts",
                        step.name
                    ),
                ));
            }
        }
        if !step.expected_command.is_empty() && first.command != step.expected_command {
            warnings.push(format!(
                "step {:?} ran {:?}, the layout expects {:?}",
                step.name, first.command, step.expected_command
            ));
        }
        chosen.insert(
            step.name.clone(),
            LinkArtifacts {
                materials: first.materials.clone(),
                products: first.products.clone(),
            },
        );
        outcomes.push(StepOutcome {
            name: step.name.clone(),
            signed_by: links.iter().map(|(k, _, _)| k.clone()).collect(),
            threshold: step.threshold,
        });
    }
    (outcomes, chosen)
}

/// Applies every step's material and product rules; all failures are reported.
fn verify_rules(
    checked: &Checked<'_>,
    links: &BTreeMap<String, LinkArtifacts>,
    failures: &mut Vec<Failure>,
) {
    for step in &checked.layout.steps {
        let Some((materials, products)) = checked.rules.get(&step.name) else {
            continue;
        };
        for (side, rules) in [(Side::Materials, materials), (Side::Products, products)] {
            if let Err(e) = verify_item_rules(&step.name, side, rules, links) {
                failures.push(Failure {
                    check: Check::Rule,
                    step: Some(step.name.clone()),
                    message: format!(
                        "{} of step {:?}: {}",
                        side.rules_field(),
                        step.name,
                        e.message
                    ),
                    detail: e.trace,
                });
            }
        }
    }
}

fn short_keyids(keyids: &[String]) -> String {
    if keyids.is_empty() {
        return "no key".to_owned();
    }
    keyids
        .iter()
        .map(|k| k.get(..8).unwrap_or(k).to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}
