//! The golden workflows embedded in the binary (`fixtures/golden/NAME/maestro.yaml`, with
//! `expect.yaml`: how a run must end), so `maestro run -w hello` works on a fresh appliance.
//! The same sources ship as signed catalog packages (`app::golden`), which `maestro run -w
//! golden/NAME` runs.

use rust_embed::RustEmbed;

use crate::domain::golden::Expect;

#[derive(RustEmbed)]
#[folder = "fixtures/golden/"]
struct Golden;

/// The manifest file of a golden.
const MANIFEST: &str = "maestro.yaml";
/// The expectation file of a golden.
const EXPECT: &str = "expect.yaml";

fn file(name: &str, file: &str) -> Option<String> {
    if name.is_empty() || name.contains('/') || name.contains('\\') || name.contains("..") {
        return None;
    }
    let data = Golden::get(&format!("{name}/{file}"))?.data.into_owned();
    String::from_utf8(data).ok()
}

/// Names of the embedded workflows, sorted.
pub fn names() -> Vec<String> {
    let mut v: Vec<String> = Golden::iter()
        .filter_map(|f| f.strip_suffix(&format!("/{MANIFEST}")).map(str::to_owned))
        .collect();
    v.sort();
    v
}

/// The YAML of an embedded workflow.
pub fn get(name: &str) -> Option<String> {
    file(name, MANIFEST)
}

/// How a run of an embedded workflow must end.
pub fn expect(name: &str) -> Option<Result<Expect, String>> {
    file(name, EXPECT).map(|text| Expect::parse(&text).map_err(|e| format!("{name}/{EXPECT}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validate::{self, AnyPackage, Context};

    #[test]
    fn every_embedded_workflow_is_valid_named_after_its_directory_and_has_an_expectation() {
        let names = names();
        assert_eq!(names.len(), 10, "{names:?}");
        let ctx = Context {
            catalog: &AnyPackage,
            ..Context::default()
        };
        for name in &names {
            let text = get(name).unwrap();
            let v = validate::load(&text, &ctx).unwrap_or_else(|p| panic!("{name}: {p:#?}"));
            assert_eq!(&v.manifest.name, name);
            expect(name)
                .unwrap_or_else(|| panic!("{name} has no expect.yaml"))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        for bad in ["../Cargo", "nope", "hello/../hello", "", "golden/hello"] {
            assert!(get(bad).is_none(), "{bad}");
        }
    }
}
