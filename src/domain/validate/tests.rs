//! Unit tests of manifest validation: one case per rule, plus "every problem at once".

use super::*;

fn problems(text: &str) -> Vec<Problem> {
    match load(text, &Context::default()) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

fn one(text: &str) -> Problem {
    let p = problems(text);
    assert_eq!(p.len(), 1, "expected exactly one problem, got {p:#?}");
    p.into_iter().next().unwrap()
}

const HELLO: &str = r#"
name: hello
version: "1.0.0"
region: eu-west
tasks:
  - id: greet
    uses: builtin/echo
    with:
      message: hello
"#;

#[test]
fn a_valid_manifest_loads_with_its_plan() {
    let text = r#"
name: fan
version: "1.2.0"
region: eu-west
timeout: 5m
tasks:
  - id: a
    uses: builtin/echo
    with: {message: x}
  - id: b
    uses: builtin/hash
    with: {data: "${{ tasks.a.outputs.message }}"}
  - id: c
    uses: builtin/echo
    needs: [a]
    with: {message: "${{ execution.id }}"}
  - id: d
    uses: builtin/transform
    with:
      input: ["${{ tasks.b.outputs.digest }}", "${{ tasks.c.outputs.message }}"]
      op: concat
      separator: ","
    retry: {max_attempts: 3, backoff: 50ms}
    timeout: 10s
"#;
    let v = load(text, &Context::default()).expect("valid");
    assert_eq!(v.manifest.tasks.len(), 4);
    assert_eq!(v.deps, vec![vec![], vec![0], vec![0], vec![1, 2]]);
    assert_eq!(dependencies(&v.manifest), v.deps);
    let pos = |i| v.order.iter().position(|&x| x == i).unwrap();
    assert!(pos(0) < pos(1) && pos(1) < pos(3) && pos(2) < pos(3));
}

#[test]
fn json_and_yaml_of_one_document_have_one_digest() {
    let yaml = load(HELLO, &Context::default()).unwrap();
    let json = load(
        r#"{"name":"hello","region":"eu-west","version":"1.0.0",
            "tasks":[{"uses":"builtin/echo","id":"greet","with":{"message":"hello"}}]}"#,
        &Context::default(),
    )
    .unwrap();
    assert_eq!(yaml.digest, json.digest);
    assert_eq!(yaml.manifest, json.manifest);
}

#[test]
fn the_issue_example_message() {
    let p = one(&HELLO.replace("builtin/echo", "builtin/ech0"));
    assert_eq!(p.code, ProblemCode::UnknownAction);
    assert_eq!(
        p.to_string(),
        "tasks[0].uses: unknown action \"builtin/ech0\" (did you mean \"builtin/echo\"?)"
    );
    assert!(p.hint.unwrap().contains("builtin/echo"));
}

#[test]
fn syntax_errors_say_where() {
    let p = one("name: [unclosed\n");
    assert_eq!(p.code, ProblemCode::Syntax);
    assert!(p.message.starts_with("invalid YAML"), "{}", p.message);
    let p = one("{\"name\": }");
    assert_eq!(p.code, ProblemCode::Syntax);
    assert!(p.message.contains("line 1 column"), "{}", p.message);
}

#[test]
fn repeated_keys_are_refused_in_json_as_in_yaml() {
    let json = r#"{"name": "a", "version": "1.0.0", "region": "eu-west", "name": "b",
        "tasks": [{"id": "t", "uses": "builtin/echo", "with": {"message": "x", "message": "y"}}]}"#;
    let p = one(json);
    assert_eq!(p.code, ProblemCode::Syntax);
    assert!(
        p.message.contains(r#"duplicate key "name""#),
        "{}",
        p.message
    );
    assert!(p.message.contains("line 1 column"), "{}", p.message);
    let nested = json.replacen(r#", "name": "b""#, "", 1);
    let p = one(&nested);
    assert!(
        p.message.contains(r#"duplicate key "message""#),
        "{}",
        p.message
    );
    let yaml = "name: a\nname: b\nversion: \"1.0.0\"\ntasks: []\n";
    assert_eq!(one(yaml).code, ProblemCode::Syntax);
    // Without the repeats both load, numbers and all.
    let clean = nested.replacen(
        r#", "message": "y""#,
        r#", "n": [1, -2, 0.5, true, null]"#,
        1,
    );
    assert!(
        problems(&clean).iter().all(|p| p.path.ends_with(".n")),
        "{:#?}",
        problems(&clean)
    );
}

#[test]
fn non_object_documents() {
    for text in ["- a\n- b\n", "42", "\"x\"", "null", ""] {
        let p = problems(text);
        assert_eq!(p.len(), 1, "{text:?}: {p:?}");
        assert_eq!(p[0].code, ProblemCode::InvalidType, "{text:?}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
name: Bad Name
version: 1.0
region: EU
colour: blue
tasks:
  - id: a
    uses: builtin/ech0
  - id: a
    uses: builtin/echo
    with: {mesage: hi}
  - id: c
    uses: builtin/sleep
    needs: [zz]
    with: {duration: 5}
    timeout: 30
"#;
    let p = problems(text);
    let got: Vec<(ProblemCode, &str)> = p.iter().map(|p| (p.code, p.path.as_str())).collect();
    let expected = [
        (ProblemCode::UnknownField, "colour"),
        (ProblemCode::InvalidValue, "name"),
        (ProblemCode::InvalidType, "version"),
        (ProblemCode::InvalidValue, "region"),
        (ProblemCode::UnknownAction, "tasks[0].uses"),
        (ProblemCode::InvalidType, "tasks[2].timeout"),
        (ProblemCode::DuplicateId, "tasks[1].id"),
        (ProblemCode::UnknownInput, "tasks[1].with.mesage"),
        (ProblemCode::MissingInput, "tasks[1].with"),
        (ProblemCode::InvalidType, "tasks[2].with.duration"),
        (ProblemCode::UnknownTask, "tasks[2].needs[0]"),
    ];
    for e in expected {
        assert!(got.contains(&e), "missing {e:?} in {got:#?}");
    }
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    let version = p.iter().find(|p| p.path == "version").unwrap();
    assert_eq!(
        version.hint.as_deref(),
        Some(
            "quote the version as you meant it (unquoted it is the number 1.0): version: \"1.0.0\""
        )
    );
    let region = p.iter().find(|p| p.path == "region").unwrap();
    assert_eq!(
        region.hint.as_deref(),
        Some("regions are lowercase: region: eu")
    );
    let unknown = p.iter().find(|p| p.path == "tasks[1].with.mesage").unwrap();
    assert!(unknown.message.contains("did you mean \"message\""));
}

#[test]
fn missing_fields() {
    let p = problems("name: x\n");
    let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["version", "region", "tasks"]);
    assert!(p.iter().all(|p| p.code == ProblemCode::MissingField));
}

#[test]
fn bad_versions() {
    for v in ["\"1.0\"", "\"v1.0.0\"", "\"1.0.0.0\"", "\"latest\""] {
        let p = one(&HELLO.replace("\"1.0.0\"", v));
        assert_eq!(p.code, ProblemCode::InvalidVersion, "{v}");
        assert_eq!(p.path, "version");
    }
    assert!(problems(&HELLO.replace("\"1.0.0\"", "\"1.0.0-rc.1+build.5\"")).is_empty());
}

#[test]
fn cycles_are_reported_with_their_path() {
    let text = r#"
name: c
version: "1.0.0"
region: eu-west
tasks:
  - id: a
    uses: builtin/echo
    needs: [c]
    with: {message: a}
  - id: b
    uses: builtin/echo
    with: {message: "${{ tasks.a.outputs.message }}"}
  - id: c
    uses: builtin/echo
    needs: [b]
    with: {message: c}
"#;
    let p = one(text);
    assert_eq!(p.code, ProblemCode::Cycle);
    assert_eq!(p.path, "tasks[0].needs");
    assert_eq!(p.message, "dependency cycle: a -> c -> b -> a");
}

#[test]
fn self_references() {
    let text = HELLO.replace(
        "message: hello",
        "message: \"${{ tasks.greet.outputs.message }}\"",
    );
    assert_eq!(one(&text).code, ProblemCode::SelfReference);
    let text = HELLO.replace(
        "uses: builtin/echo",
        "uses: builtin/echo\n    needs: [greet]",
    );
    assert_eq!(one(&text).code, ProblemCode::SelfReference);
}

#[test]
fn references_are_checked() {
    let base = r#"
name: r
version: "1.0.0"
region: eu-west
tasks:
  - id: build
    uses: builtin/hash
    with: {data: x}
  - id: use
    uses: builtin/echo
    with: {message: "MSG"}
"#;
    let p = one(&base.replace("MSG", "${{ tasks.biuld.outputs.digest }}"));
    assert_eq!(
        (p.code, p.path.as_str()),
        (ProblemCode::UnknownTask, "tasks[1].with.message")
    );
    assert!(
        p.message.contains("did you mean \"build\""),
        "{}",
        p.message
    );
    let p = one(&base.replace("MSG", "${{ tasks.build.outputs.digst }}"));
    assert_eq!(p.code, ProblemCode::UnknownOutput);
    assert_eq!(
        p.message,
        "builtin/hash has no output \"digst\" (did you mean \"digest\"?)"
    );
    let p = one(&base.replace("MSG", "sum=${{ tasks.build.output.digest }}"));
    assert_eq!(p.code, ProblemCode::InvalidExpression);
    let p = one(&base.replace("MSG", "${{ tasks.build.outputs.digest"));
    assert_eq!(p.code, ProblemCode::InvalidExpression);
    assert!(p.message.contains("unterminated"));
    assert!(problems(&base.replace("MSG", "${{ tasks.build.outputs.digest }}")).is_empty());
}

#[test]
fn input_types_are_checked_unless_resolved_later() {
    let text = HELLO.replace(
        "uses: builtin/echo\n    with:\n      message: hello",
        "uses: builtin/hash\n    with:\n      data: 5\n      algorithm: sha265",
    );
    let p = problems(&text);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!(p[0].path, "tasks[0].with.data");
    assert!(p[1].message.contains("did you mean \"sha256\""));
    let text = HELLO.replace(
        "uses: builtin/echo\n    with:\n      message: hello",
        "uses: builtin/exec\n    with:\n      command: \"${{ execution.id }}\"",
    );
    assert!(problems(&text).is_empty());
}

#[test]
fn packages_must_be_in_the_catalog_and_get_exactly_their_inputs() {
    struct One;
    impl Catalog for One {
        fn versions(&self, name: &str) -> Vec<semver::Version> {
            if name == "notes" {
                vec![semver::Version::new(1, 0, 0), semver::Version::new(1, 1, 0)]
            } else {
                vec![]
            }
        }
        fn inputs(&self, name: &str, _: &semver::Version) -> Option<BTreeSet<String>> {
            (name == "notes").then(|| BTreeSet::from(["message".to_owned()]))
        }
    }
    let ctx = Context {
        catalog: &One,
        ..Context::default()
    };
    // HELLO's echo task passes `message`, the one input notes takes.
    let text = HELLO.replace("builtin/echo", "pkg:notes@1.0.0");
    assert!(load(&text, &ctx).is_ok());
    let text = HELLO.replace("builtin/echo", "pkg:notes@2.0.0");
    let p = load(&text, &ctx).unwrap_err();
    assert_eq!(p[0].code, ProblemCode::UnknownPackage);
    assert_eq!(
        p[0].hint.as_deref(),
        Some("installed versions: 1.0.0, 1.1.0")
    );
    let text = HELLO
        .replace("builtin/echo", "pkg:notes@1.0.0")
        .replace("message:", "mesage:");
    let p = load(&text, &ctx).unwrap_err();
    let codes: Vec<_> = p.iter().map(|p| (p.code, p.path.as_str())).collect();
    assert_eq!(
        codes,
        [
            (ProblemCode::UnknownInput, "tasks[0].with.mesage"),
            (ProblemCode::MissingInput, "tasks[0].with"),
        ]
    );
    assert!(p[0].message.contains("did you mean \"message\""), "{p:?}");
    assert_eq!(
        p[1].message,
        "missing input \"message\" for pkg:notes@1.0.0"
    );
}

#[test]
fn a_package_that_runs_packages_runs_only_on_its_own_and_a_package_manifest_names_any() {
    struct Nested;
    impl Catalog for Nested {
        fn versions(&self, _: &str) -> Vec<semver::Version> {
            vec![semver::Version::new(1, 0, 0)]
        }
        fn inputs(&self, _: &str, _: &semver::Version) -> Option<BTreeSet<String>> {
            Some(BTreeSet::new())
        }
        fn runs_packages(&self, name: &str, _: &semver::Version) -> bool {
            name == "outer"
        }
    }
    let ctx = Context {
        catalog: &Nested,
        ..Context::default()
    };
    let uses = |name: &str| {
        HELLO
            .replace("builtin/echo", &format!("pkg:{name}@1.0.0"))
            .replace("    with:\n      message: hello\n", "")
    };
    assert!(load(&uses("inner"), &ctx).is_ok());
    let p = load(&uses("outer"), &ctx).unwrap_err();
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        (p[0].code, p[0].path.as_str()),
        (ProblemCode::InvalidValue, "tasks[0].uses")
    );
    assert!(
        p[0].message.contains("packages do not run packages"),
        "{p:?}"
    );
    // A package's own manifest: the packages it uses are checked where it runs.
    let any = Context {
        catalog: &AnyPackage,
        ..Context::default()
    };
    assert!(load(&uses("anything"), &any).is_ok());
    assert!(load(&uses("anything"), &Context::default()).is_err());
}

#[test]
fn package_inputs_are_references() {
    let text = HELLO.replace("message: hello", "message: \"${{ inputs.greeting.text }}\"");
    assert!(problems(&text).is_empty());
    let text = HELLO.replace("message: hello", "message: \"${{ input.greeting }}\"");
    let p = problems(&text);
    assert!(p[0].message.contains("inputs.KEY"), "{p:?}");
}

#[test]
fn regions_are_checked_against_the_appliance() {
    let regions = vec!["eu-west".to_string(), "us-east".to_string()];
    let ctx = Context {
        regions: &regions,
        ..Context::default()
    };
    assert!(load(HELLO, &ctx).is_ok());
    let p = load(&HELLO.replace("eu-west", "eu-wset"), &ctx).unwrap_err();
    assert_eq!(p[0].code, ProblemCode::UnknownRegion);
    assert!(p[0].message.contains("did you mean \"eu-west\""));
}

#[test]
fn limits() {
    let mut text = String::from("name: big\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n");
    for i in 0..300 {
        text.push_str(&format!(
            "  - {{id: t{i}, uses: builtin/echo, with: {{message: x}}}}\n"
        ));
    }
    let p = one(&text);
    assert_eq!((p.code, p.path.as_str()), (ProblemCode::TooLarge, "tasks"));
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let p = one(&format!("name: {deep}\n"));
    assert_eq!(p.code, ProblemCode::TooLarge, "{p:?}");
    let huge = "a".repeat(MAX_DOCUMENT_BYTES + 1);
    assert_eq!(one(&huge).code, ProblemCode::TooLarge);
}

#[test]
fn yaml_bombs_are_refused_not_expanded() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    let p = problems(&text);
    assert!(!p.is_empty());
    assert!(
        matches!(
            p[0].code,
            ProblemCode::Syntax | ProblemCode::TooLarge | ProblemCode::UnknownField
        ),
        "{p:#?}"
    );
}

#[test]
fn retry_rules() {
    let text = HELLO.replace(
        "uses: builtin/echo",
        "uses: builtin/echo\n    retry: {max_attempts: 0, backoff: 2h, multiplier: 50, jitter: 1}",
    );
    let p = problems(&text);
    let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "tasks[0].retry.jitter",
            "tasks[0].retry.max_attempts",
            "tasks[0].retry.backoff",
            "tasks[0].retry.multiplier"
        ]
    );
}

#[test]
fn needs_must_be_a_list() {
    let text = HELLO.replace("uses: builtin/echo", "uses: builtin/echo\n    needs: other");
    let p = one(&text);
    assert_eq!(p.code, ProblemCode::InvalidType);
    assert_eq!(p.hint.as_deref(), Some("write needs: [other]"));
}

#[test]
fn odd_keys_get_readable_paths() {
    let text = HELLO.replace("message: hello", "message: hello\n      \"a b\": 1");
    let p = one(&text);
    assert_eq!(p.path, "tasks[0].with[\"a b\"]");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            let _ = load(&text, &Context::default());
        }

        #[test]
        fn mutated_manifests_never_panic(
            cut in 0usize..HELLO.len(),
            insert in "[-:{}\\[\\]\"'$ a-z0-9\n]{0,12}",
        ) {
            let mut text = HELLO.to_string();
            let cut = (0..=cut).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            text.insert_str(cut, &insert);
            let _ = load(&text, &Context::default());
        }
    }
}
