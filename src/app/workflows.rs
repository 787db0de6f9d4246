//! Named workflows embedded in the binary (`fixtures/golden/*.yaml`), so `maestro run -w
//! hello` works on a fresh appliance.

use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "fixtures/golden/"]
struct Golden;

/// Names of the embedded workflows, sorted.
pub fn names() -> Vec<String> {
    let mut v: Vec<String> = Golden::iter()
        .filter_map(|f| f.strip_suffix(".yaml").map(str::to_owned))
        .collect();
    v.sort();
    v
}

/// The YAML of an embedded workflow: `NAME` or `golden/NAME`.
pub fn get(name: &str) -> Option<String> {
    let name = name.strip_prefix("golden/").unwrap_or(name);
    if name.contains('/') || name.contains("..") {
        return None;
    }
    let file = Golden::get(&format!("{name}.yaml"))?;
    String::from_utf8(file.data.into_owned()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validate::{self, Context};

    #[test]
    fn every_embedded_workflow_is_valid_and_named_after_its_file() {
        let names = names();
        assert!(names.len() >= 7, "{names:?}");
        for name in &names {
            let text = get(name).unwrap();
            let v = validate::load(&text, &Context::default())
                .unwrap_or_else(|p| panic!("{name}: {p:#?}"));
            assert_eq!(&v.manifest.name, name);
            assert_eq!(get(&format!("golden/{name}")), Some(text));
        }
        assert!(get("../Cargo").is_none());
        assert!(get("nope").is_none());
    }
}
