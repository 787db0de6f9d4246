//! The deployment files, checked without a Docker engine, Helm or Grafana (none runs on
//! these machines): the Dockerfile's build stage copies everything the binary compiles in
//! and `.dockerignore` excludes none of it, the runtime stage runs as a numeric non-root user
//! with a data volume and a health check the binary answers; every `.Values` path the Helm
//! templates use exists in `values.yaml`, and the chart's alert rules are the same file as
//! `deploy/prometheus/alerts.yml`; the Grafana dashboards are importable JSON. (That every
//! `mc_*` metric they query is exported is checked with the alert rules, in `interop`.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{bin, cli};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every repository path the crate compiles in: rust-embed folders and `include_str!` /
/// `include_bytes!` files.
fn compiled_in() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut paths = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (marker, relative) in [
            ("#[folder = \"", false),
            ("include_str!(\"", true),
            ("include_bytes!(\"", true),
        ] {
            for part in text.split(marker).skip(1) {
                let lit = &part[..part.find('"').unwrap()];
                let path = if relative {
                    let abs = file.parent().unwrap().join(lit);
                    let abs = std::path::absolute(&abs).unwrap();
                    let mut clean = PathBuf::new();
                    for c in abs.components() {
                        match c {
                            std::path::Component::ParentDir => {
                                clean.pop();
                            }
                            other => clean.push(other),
                        }
                    }
                    clean
                        .strip_prefix(root())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                } else {
                    lit.trim_end_matches('/').to_owned()
                };
                paths.insert(path);
            }
        }
    }
    paths
}

#[test]
fn the_dockerfile_builds_from_a_context_holding_all_it_compiles_in_and_runs_unprivileged() {
    let dockerfile = read("Dockerfile");
    let stages: Vec<&str> = dockerfile.split("\nFROM ").collect();
    assert!(stages.len() >= 3, "a multi-stage build");
    let build = stages[1];
    let runtime = stages.last().unwrap();
    let copied: Vec<String> = build
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len() - 1]
                .iter()
                .map(|w| w.trim_end_matches('/').to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches("**/").trim_end_matches('/').to_owned())
        .collect();
    let mut needed = compiled_in();
    for p in ["Cargo.toml", "Cargo.lock", "src", "benches"] {
        needed.insert(p.to_owned());
    }
    assert!(
        needed.contains("packages") && needed.contains("policy/rego"),
        "{needed:?}"
    );
    for path in &needed {
        assert!(
            root().join(path).exists(),
            "{path} is compiled in but does not exist"
        );
        assert!(
            copied
                .iter()
                .any(|c| path == c || path.starts_with(&format!("{c}/"))),
            "the build stage does not COPY {path} (it copies {copied:?})"
        );
        for pattern in &ignored {
            let hit = path == pattern
                || path.starts_with(&format!("{pattern}/"))
                || path.split('/').any(|part| part == pattern);
            assert!(!hit, ".dockerignore pattern {pattern:?} excludes {path}");
        }
    }
    assert!(build.contains("cargo build --release --locked"), "{build}");

    // The runtime stage: numeric non-root user, the data volume, the health check.
    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .expect("numeric uid");
    assert_ne!(uid, 0);
    assert!(runtime.contains("VOLUME [\"/var/lib/maestro\"]"));
    assert!(runtime.contains("MAESTRO_DATA_DIR=/var/lib/maestro"));
    let health = runtime
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("a HEALTHCHECK");
    assert!(
        health.contains("\"/usr/local/bin/maestro\", \"healthcheck\""),
        "{health}"
    );
    // The command it names exists and fails (exit 1) when nothing answers.
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = cli(
        &[
            "healthcheck",
            "--url",
            "http://127.0.0.1:9",
            "--timeout",
            "2s",
        ],
        &[],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("cannot reach"), "{out}");
    assert!(bin().exists());
}

/// The `.Values.a.b…` paths of a template.
fn value_paths(text: &str) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for part in text.split(".Values.").skip(1) {
        let path: Vec<String> = part
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .next()
            .unwrap()
            .trim_end_matches('.')
            .split('.')
            .map(str::to_owned)
            .collect();
        out.insert(path);
    }
    out
}

#[test]
fn the_helm_chart_uses_only_values_it_declares_and_ships_the_same_alert_rules() {
    let chart = root().join("deploy/helm/maestro");
    let values: Value = serde_saphyr::from_str(&read("deploy/helm/maestro/values.yaml")).unwrap();
    let chart_yaml: Value =
        serde_saphyr::from_str(&read("deploy/helm/maestro/Chart.yaml")).unwrap();
    assert_eq!(chart_yaml["apiVersion"], "v2");
    assert_eq!(chart_yaml["appVersion"], env!("CARGO_PKG_VERSION"));
    let mut templates = Vec::new();
    let mut stack = vec![chart.join("templates")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                templates.push(e.path());
            }
        }
    }
    assert!(templates.len() >= 8, "{templates:?}");
    let mut used = 0;
    for t in &templates {
        let text = std::fs::read_to_string(t).unwrap();
        for path in value_paths(&text) {
            used += 1;
            let mut v = &values;
            for key in &path {
                v = v.get(key).unwrap_or_else(|| {
                    panic!(
                        "{} uses .Values.{} but values.yaml has no {key:?}",
                        t.display(),
                        path.join(".")
                    )
                });
            }
        }
    }
    assert!(used > 30, "{used} value references");
    for key in [
        "image",
        "features",
        "oidc",
        "persistence",
        "probes",
        "resources",
    ] {
        assert!(values.get(key).is_some(), "values.yaml has no {key}");
    }
    let statefulset = std::fs::read_to_string(chart.join("templates/statefulset.yaml")).unwrap();
    for want in [
        "/readyz",
        "/healthz",
        "runAsNonRoot",
        "enableServiceLinks: false",
    ] {
        assert!(
            statefulset.contains(want) || read("deploy/helm/maestro/values.yaml").contains(want),
            "the chart has no {want}"
        );
    }
    assert_eq!(
        read("deploy/helm/maestro/files/alerts.yml"),
        read("deploy/prometheus/alerts.yml"),
        "cp deploy/prometheus/alerts.yml deploy/helm/maestro/files/alerts.yml"
    );
}

#[test]
fn the_grafana_dashboards_are_importable_json() {
    let dir = root().join("deploy/grafana");
    let mut titles = BTreeSet::new();
    for name in ["isolation", "residency", "console", "postrelease"] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        let d: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            d["uid"].as_str().is_some_and(|u| !u.is_empty()),
            "{name}: uid"
        );
        assert!(titles.insert(d["title"].as_str().unwrap().to_owned()));
        assert!(
            d["__inputs"][0]["pluginId"] == "prometheus",
            "{name}: datasource input"
        );
        let panels = d["panels"].as_array().unwrap();
        let queries: Vec<&str> = panels
            .iter()
            .flat_map(|p| p["targets"].as_array().into_iter().flatten())
            .filter_map(|t| t["expr"].as_str())
            .collect();
        assert!(queries.len() >= 4, "{name}: {} queries", queries.len());
        assert!(
            queries.iter().all(|q| q.contains("mc_")),
            "{name}: {queries:?}"
        );
    }
}
