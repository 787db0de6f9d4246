//! Artifact rules of in-toto layouts: parsing (`unpack_rule`: keywords case-insensitive,
//! 2-element generic rules, 6/8/10-element MATCH rules) and the reference queue algorithm
//! (`verify_item_rules`): rules consume artifacts from a queue in order, DISALLOW and REQUIRE
//! fail, and whatever is left at the end is accepted. Failures explain why each leftover was
//! not consumed by the MATCH rules before them.

use std::collections::{BTreeMap, BTreeSet};

use super::fnmatch::Pattern;

/// Hash algorithm → lowercase hex digest.
pub type HashDict = BTreeMap<String, String>;
/// Path → hashes, as recorded in a link's `materials` or `products`.
pub type Artifacts = BTreeMap<String, HashDict>;

/// Which list of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `materials`: what the step read.
    Materials,
    /// `products`: what the step left.
    Products,
}

impl Side {
    /// The layout's field name for this side's rules.
    pub fn rules_field(self) -> &'static str {
        match self {
            Side::Materials => "expected_materials",
            Side::Products => "expected_products",
        }
    }

    /// `materials` or `products`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Materials => "materials",
            Side::Products => "products",
        }
    }
}

/// What a rule does.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Consumes queued artifacts that exist only as products.
    Create(Pattern),
    /// Consumes queued artifacts that exist only as materials.
    Delete(Pattern),
    /// Consumes queued artifacts present on both sides with different hashes.
    Modify(Pattern),
    /// Consumes queued matching artifacts.
    Allow(Pattern),
    /// Fails if a queued artifact matches.
    Disallow(Pattern),
    /// Fails unless this exact path is queued.
    Require(String),
    /// Consumes queued artifacts whose hashes equal those of another step's artifacts.
    Match {
        /// Pattern, applied after the source prefix is stripped.
        pattern: Pattern,
        /// Plain (not globbed) prefix of the queued paths.
        source_prefix: Option<String>,
        /// Which side of the other step's link.
        dest_side: Side,
        /// Prefix of the other step's paths.
        dest_prefix: Option<String>,
        /// The other step.
        from: String,
    },
}

/// A parsed rule with its text.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's words, as written.
    pub words: Vec<String>,
    /// Its meaning.
    pub kind: Kind,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.words.join(" "))
    }
}

const SHAPES: &str = "MATCH <pattern> [IN <source-prefix>] WITH (MATERIALS|PRODUCTS) \
     [IN <destination-prefix>] FROM <step>, or CREATE|DELETE|MODIFY|ALLOW|DISALLOW|REQUIRE <pattern>";

impl Rule {
    /// Parses a rule as in-toto's `unpack_rule` does.
    pub fn parse(words: &[String]) -> Result<Rule, String> {
        let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
        if words.len() < 2 {
            return Err(format!(
                "a rule needs a type and a pattern, got {words:?}; rules are {SHAPES}"
            ));
        }
        let pattern = || Pattern::new(&words[1]);
        let generic = |kind: Kind| -> Result<Kind, String> {
            if words.len() == 2 {
                Ok(kind)
            } else {
                Err(format!(
                    "{} takes exactly one pattern, got {words:?}",
                    words[0].to_uppercase()
                ))
            }
        };
        let kind = match lower[0].as_str() {
            "create" => generic(Kind::Create(pattern()))?,
            "delete" => generic(Kind::Delete(pattern()))?,
            "modify" => generic(Kind::Modify(pattern()))?,
            "allow" => generic(Kind::Allow(pattern()))?,
            "disallow" => generic(Kind::Disallow(pattern()))?,
            "require" => generic(Kind::Require(words[1].clone()))?,
            "match" => {
                let at = |i: usize, word: &str| lower.get(i).map(String::as_str) == Some(word);
                let (source_prefix, side, dest_prefix, from) = match words.len() {
                    10 if at(2, "in") && at(4, "with") && at(6, "in") && at(8, "from") => {
                        (Some(3), 5, Some(7), 9)
                    }
                    8 if at(2, "in") && at(4, "with") && at(6, "from") => (Some(3), 5, None, 7),
                    8 if at(2, "with") && at(4, "in") && at(6, "from") => (None, 3, Some(5), 7),
                    6 if at(2, "with") && at(4, "from") => (None, 3, None, 5),
                    _ => {
                        return Err(format!(
                            "malformed MATCH rule {words:?}; rules are {SHAPES}"
                        ));
                    }
                };
                let dest_side = match lower[side].as_str() {
                    "materials" => Side::Materials,
                    "products" => Side::Products,
                    other => {
                        return Err(format!(
                            "MATCH rule {words:?} must match WITH MATERIALS or PRODUCTS, not {other:?}"
                        ));
                    }
                };
                Kind::Match {
                    pattern: pattern(),
                    source_prefix: source_prefix.map(|i| words[i].clone()),
                    dest_side,
                    dest_prefix: dest_prefix.map(|i| words[i].clone()),
                    from: words[from].clone(),
                }
            }
            _ => {
                return Err(format!(
                    "unknown rule type {:?}; rules are {SHAPES}",
                    words[0]
                ));
            }
        };
        Ok(Rule {
            words: words.to_vec(),
            kind,
        })
    }

    /// Whether this rule is `DISALLOW *`, the rule strict layouts end every list with.
    pub fn is_disallow_all(&self) -> bool {
        matches!(&self.kind, Kind::Disallow(_)) && self.words[1] == "*"
    }
}

/// The materials and products of one step's link.
#[derive(Debug, Clone, Default)]
pub struct LinkArtifacts {
    /// What the step read.
    pub materials: Artifacts,
    /// What the step left.
    pub products: Artifacts,
}

impl LinkArtifacts {
    fn side(&self, side: Side) -> &Artifacts {
        match side {
            Side::Materials => &self.materials,
            Side::Products => &self.products,
        }
    }
}

/// A rule that failed, with the reference's message and a trace of the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFailure {
    /// The failing rule's text.
    pub rule: String,
    /// What failed, worded as the reference words it.
    pub message: String,
    /// Why leftover artifacts were not consumed, and the queue before each rule.
    pub trace: Vec<String>,
}

/// Applies `rules` to the `side` artifacts of step `item`'s link (`links` has every step's
/// link) and returns the artifacts left in the queue (accepted), or the first failure.
pub fn verify_item_rules(
    item: &str,
    side: Side,
    rules: &[Rule],
    links: &BTreeMap<String, LinkArtifacts>,
) -> Result<BTreeSet<String>, RuleFailure> {
    let empty = LinkArtifacts::default();
    let link = links.get(item).unwrap_or(&empty);
    let source = link.side(side);
    let mut queue: BTreeSet<String> = source.keys().cloned().collect();
    let mut trace = vec![format!(
        "{} of {item:?}: {}",
        side.as_str(),
        python_list(queue.iter())
    )];
    // Why an artifact a MATCH rule selected was not consumed, by path.
    let mut unmatched: BTreeMap<String, String> = BTreeMap::new();
    for rule in rules {
        let consumed: BTreeSet<String> = match &rule.kind {
            Kind::Allow(p) => select(&queue, p, |_| true),
            Kind::Create(p) => select(&queue, p, |a| {
                link.products.contains_key(a) && !link.materials.contains_key(a)
            }),
            Kind::Delete(p) => select(&queue, p, |a| {
                link.materials.contains_key(a) && !link.products.contains_key(a)
            }),
            Kind::Modify(p) => select(&queue, p, |a| {
                matches!(
                    (link.materials.get(a), link.products.get(a)),
                    (Some(m), Some(q)) if m != q
                )
            }),
            Kind::Disallow(p) => {
                let hits: Vec<&String> = queue.iter().filter(|a| p.matches(a)).collect();
                if !hits.is_empty() {
                    for hit in &hits {
                        if let Some(why) = unmatched.get(*hit) {
                            trace.push(format!("{hit}: {why}"));
                        }
                    }
                    return Err(RuleFailure {
                        rule: rule.to_string(),
                        message: format!(
                            "'{rule}' matched the following artifacts: {}",
                            python_list(hits.into_iter())
                        ),
                        trace,
                    });
                }
                BTreeSet::new()
            }
            Kind::Require(path) => {
                if !queue.contains(path) {
                    let set = if queue.is_empty() {
                        "set()".to_owned()
                    } else {
                        let list = python_list(queue.iter());
                        format!("{{{}}}", &list[1..list.len() - 1])
                    };
                    return Err(RuleFailure {
                        rule: rule.to_string(),
                        message: format!("'{rule}' did not find {path} in: {set}"),
                        trace,
                    });
                }
                BTreeSet::new()
            }
            Kind::Match {
                pattern,
                source_prefix,
                dest_side,
                dest_prefix,
                from,
            } => {
                let mut consumed = BTreeSet::new();
                let Some(dest_link) = links.get(from) else {
                    for path in queue.iter() {
                        unmatched.entry(path.clone()).or_insert_with(|| {
                            format!("'{rule}': step {from:?} has no link to match against")
                        });
                    }
                    continue;
                };
                let dest = dest_link.side(*dest_side);
                let prefix = source_prefix.as_deref().map(with_trailing_slash);
                for path in queue.iter() {
                    let relative = match &prefix {
                        Some(prefix) => match path.strip_prefix(prefix.as_str()) {
                            Some(rest) => rest,
                            None => continue,
                        },
                        None => path.as_str(),
                    };
                    if !pattern.matches(relative) {
                        continue;
                    }
                    // os.path.join: an absolute second part replaces the prefix.
                    let dest_path = match dest_prefix {
                        Some(dp) if !relative.starts_with('/') => {
                            format!("{}{relative}", with_trailing_slash(dp))
                        }
                        _ => relative.to_owned(),
                    };
                    match dest.get(&dest_path) {
                        Some(hashes) if Some(hashes) == source.get(path) => {
                            consumed.insert(path.clone());
                        }
                        Some(hashes) => {
                            unmatched.insert(
                                path.clone(),
                                format!(
                                    "'{rule}': {} differs from {from}'s {} {dest_path} ({})",
                                    describe(source.get(path)),
                                    dest_side.as_str(),
                                    describe(Some(hashes))
                                ),
                            );
                        }
                        None => {
                            unmatched.insert(
                                path.clone(),
                                format!(
                                    "'{rule}': {from}'s {} have no {dest_path}",
                                    dest_side.as_str()
                                ),
                            );
                        }
                    }
                }
                consumed
            }
        };
        for path in &consumed {
            queue.remove(path);
        }
        trace.push(format!(
            "queue after '{rule}': {}",
            python_list(queue.iter())
        ));
    }
    Ok(queue)
}

/// The queued paths that match `pattern` and satisfy `keep`.
fn select(
    queue: &BTreeSet<String>,
    pattern: &Pattern,
    keep: impl Fn(&str) -> bool,
) -> BTreeSet<String> {
    queue
        .iter()
        .filter(|a| pattern.matches(a) && keep(a))
        .cloned()
        .collect()
}

/// `os.path.join(prefix, "")`: one trailing slash unless there already is one.
fn with_trailing_slash(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    }
}

fn describe(hashes: Option<&HashDict>) -> String {
    match hashes {
        None => "nothing".to_owned(),
        Some(hashes) => hashes
            .iter()
            .map(|(alg, hex)| format!("{alg}:{}", hex.get(..12).unwrap_or(hex)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A list of paths as Python prints a list of strings.
fn python_list<'a>(items: impl Iterator<Item = &'a String>) -> String {
    let quoted: Vec<String> = items
        .map(|s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(rule: &serde_json::Value) -> Vec<String> {
        rule.as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_owned())
            .collect()
    }

    fn artifacts(value: Option<&serde_json::Value>) -> Artifacts {
        value
            .map(|v| serde_json::from_value(v.clone()).unwrap())
            .unwrap_or_default()
    }

    #[test]
    fn replays_the_reference_rule_vectors() {
        let text = include_str!("../../../fixtures/intoto/rule-vectors.json");
        let vectors: serde_json::Value = serde_json::from_str(text).unwrap();
        let cases = vectors["rule_cases"].as_array().unwrap();
        assert!(cases.len() >= 36);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let links: BTreeMap<String, LinkArtifacts> = case["links"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(step, link)| {
                    (
                        step.clone(),
                        LinkArtifacts {
                            materials: artifacts(link.get("materials")),
                            products: artifacts(link.get("products")),
                        },
                    )
                })
                .collect();
            let side = match case["source_type"].as_str().unwrap() {
                "materials" => Side::Materials,
                _ => Side::Products,
            };
            let rules: Vec<Rule> = case["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| Rule::parse(&words(r)).unwrap())
                .collect();
            let result = verify_item_rules(case["item"].as_str().unwrap(), side, &rules, &links);
            match case["result"].as_str().unwrap() {
                "pass" => {
                    let left = result.unwrap_or_else(|e| panic!("{name}: {e:?}"));
                    let expected: BTreeSet<String> =
                        serde_json::from_value(case["final_queue"].clone()).unwrap();
                    assert_eq!(left, expected, "{name}");
                }
                _ => {
                    let failure = result.expect_err(name);
                    assert_eq!(failure.message, case["message"].as_str().unwrap(), "{name}");
                }
            }
        }
    }

    #[test]
    fn malformed_rules_say_what_is_wrong() {
        let parse = |w: &[&str]| {
            Rule::parse(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap_err()
        };
        assert!(parse(&["ALLOW"]).contains("needs a type and a pattern"));
        assert!(parse(&["ALLOW", "a", "b"]).contains("ALLOW takes exactly one pattern"));
        assert!(parse(&["PERMIT", "a"]).contains("unknown rule type \"PERMIT\""));
        assert!(parse(&["MATCH", "a", "WITH", "PRODUCTS"]).contains("malformed MATCH rule"));
        assert!(
            parse(&["MATCH", "a", "WITH", "ARTIFACTS", "FROM", "b"])
                .contains("WITH MATERIALS or PRODUCTS")
        );
        let ok =
            Rule::parse(&["match", "*", "with", "products", "from", "build"].map(String::from))
                .unwrap();
        assert_eq!(ok.to_string(), "match * with products from build");
    }

    #[test]
    fn a_failed_match_explains_the_leftover() {
        let hash = |h: &str| HashDict::from([("sha256".to_owned(), h.repeat(64))]);
        let links = BTreeMap::from([
            (
                "build".to_owned(),
                LinkArtifacts {
                    materials: Artifacts::new(),
                    products: Artifacts::from([("p.tgz".to_owned(), hash("1"))]),
                },
            ),
            (
                "sign".to_owned(),
                LinkArtifacts {
                    materials: Artifacts::from([("p.tgz".to_owned(), hash("2"))]),
                    products: Artifacts::new(),
                },
            ),
        ]);
        let rules = [
            Rule::parse(&["MATCH", "*", "WITH", "PRODUCTS", "FROM", "build"].map(String::from))
                .unwrap(),
            Rule::parse(&["DISALLOW", "*"].map(String::from)).unwrap(),
        ];
        let failure = verify_item_rules("sign", Side::Materials, &rules, &links).unwrap_err();
        assert_eq!(
            failure.message,
            "'DISALLOW *' matched the following artifacts: ['p.tgz']"
        );
        let why = failure
            .trace
            .iter()
            .find(|l| l.starts_with("p.tgz: "))
            .unwrap();
        assert!(
            why.contains(
                "sha256:222222222222 differs from build's products p.tgz (sha256:111111111111)"
            ),
            "{why}"
        );
    }
}
