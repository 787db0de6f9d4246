//! Fuzzes in-toto artifact rules, fnmatch patterns and layout templates: any rule words,
//! pattern or template text parse or give an error, and rules apply to any artifacts, never
//! a panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use maestro::attest::intoto::fnmatch::Pattern;
use maestro::attest::intoto::record::Template;
use maestro::attest::intoto::rules::{HashDict, LinkArtifacts, Rule, Side, verify_item_rules};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Template::parse(text);
    let mut lines = text.lines();
    let pattern = Pattern::new(lines.next().unwrap_or_default());
    let paths: Vec<String> = lines.clone().map(str::to_owned).collect();
    for path in &paths {
        let _ = pattern.matches(path);
    }
    // Each line is a rule (words split on spaces); paths are the artifacts of two steps.
    let rules: Vec<Rule> = lines
        .filter_map(|l| Rule::parse(&l.split(' ').map(str::to_owned).collect::<Vec<_>>()).ok())
        .collect();
    let hashes = |i: usize| HashDict::from([("sha256".to_owned(), format!("{:064x}", i % 3))]);
    let artifacts = |skip: usize| {
        paths
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, p)| (p.clone(), hashes(i)))
            .collect()
    };
    let mut links = BTreeMap::new();
    for (step, skip) in [("build", 0), ("sign", 1)] {
        links.insert(
            step.to_owned(),
            LinkArtifacts {
                materials: artifacts(skip),
                products: artifacts(skip + 1),
            },
        );
    }
    for side in [Side::Materials, Side::Products] {
        let _ = verify_item_rules("sign", side, &rules, &links);
    }
});
