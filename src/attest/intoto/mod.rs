//! in-toto supply-chain verification, interoperable with the reference implementation
//! (in-toto 3.x): the metadata formats (`model`), their canonical JSON (`cjson`), Python
//! `fnmatch` patterns (`fnmatch`), artifact rules (`rules`), link recording and layout
//! templates (`record`), and verification (`verify`).
//!
//! This module is the only place that knows in-toto formats. It never runs a command: links
//! record work done elsewhere, and layouts with inspections are refused.

pub mod cjson;
pub mod fnmatch;
pub mod model;
pub mod record;
pub mod rules;
pub mod verify;

#[cfg(test)]
mod tests;

pub use model::{Body, Document, Layout, Link};
pub use verify::{Check, Failure, LinkFile, Verification, verify};

impl Verification {
    /// The human form: one line per step and per failure, with indented detail.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            let signers: Vec<&str> = step
                .signed_by
                .iter()
                .map(|k| k.get(..8).unwrap_or(k))
                .collect();
            out.push_str(&format!(
                "step {}: {} of {} link(s) verified, signed by {}\n",
                step.name,
                step.signed_by.len(),
                step.threshold,
                signers.join(", ")
            ));
        }
        for warning in &self.warnings {
            out.push_str(&format!("warning: {warning}\n"));
        }
        for failure in &self.failures {
            let check = serde_json::to_value(failure.check)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            out.push_str(&format!("FAIL {check}: {}\n", failure.message));
            for line in &failure.detail {
                out.push_str(&format!("    {line}\n"));
            }
        }
        out.push_str(if self.valid {
            "the supply chain verifies\n"
        } else {
            "the supply chain does NOT verify\n"
        });
        out
    }
}
