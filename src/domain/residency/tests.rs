//! The residency check, rule by rule: each finding code, strict region reading (aliases
//! yes, case and spelling variants no), replicas, and what open violations block.

use super::*;

fn rules() -> Rules {
    Rules {
        regions: ["eu-west", "us-east"].map(String::from).into(),
        aliases: [("europe-west1".to_string(), "eu-west".to_string())].into(),
        locations: [
            ("eu-bucket", "eu-west", vec![]),
            ("us-bucket", "us-east", vec![]),
            ("mirrored", "eu-west", vec!["us-bucket".to_string()]),
        ]
        .into_iter()
        .map(|(n, r, rep)| {
            (
                n.to_string(),
                LocationRule {
                    region: r.into(),
                    replicas: rep,
                },
            )
        })
        .collect(),
        tenants: [("acme".to_string(), ["eu-west".to_string()].into())].into(),
    }
}

fn facts(region: &str, artifacts: &[(&str, &str)]) -> Facts {
    Facts {
        tenant: TenantId::new("acme").unwrap(),
        execution: ExecutionId::new("ex_01jd0000000000000000000000").unwrap(),
        receipt: Digest::of(b"r"),
        log_index: 0,
        region: region.into(),
        artifacts: artifacts
            .iter()
            .map(|(location, region)| ArtifactFact {
                task: "t".into(),
                name: format!("{location}.txt"),
                digest: Digest::of(location.as_bytes()),
                location: (*location).into(),
                region: (*region).into(),
            })
            .collect(),
    }
}

fn codes(f: &Facts) -> Vec<String> {
    check(&rules(), f).into_iter().map(|f| f.code).collect()
}

#[test]
fn a_clean_run_has_no_findings() {
    assert!(codes(&facts("eu-west", &[("eu-bucket", "eu-west")])).is_empty());
    assert!(codes(&facts("eu-west", &[])).is_empty());
}

#[test]
fn declared_aliases_read_as_their_region() {
    assert!(codes(&facts("europe-west1", &[("eu-bucket", "europe-west1")])).is_empty());
}

#[test]
fn case_spacing_and_unknown_aliases_are_findings_with_a_hint() {
    let f = check(&rules(), &facts("EU-West", &[("eu-bucket", " eu-west")]));
    let got: Vec<_> = f.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(got, ["region_unknown", "artifact_region_unknown"]);
    assert!(
        f[0].message.contains("resembles \"eu-west\""),
        "{}",
        f[0].message
    );
    assert_eq!(
        codes(&facts("eu-west", &[("eu-bucket", "europe-west")])),
        ["artifact_region_unknown"]
    );
}

#[test]
fn missing_regions_are_findings() {
    assert_eq!(codes(&facts("", &[])), ["region_missing"]);
    assert_eq!(
        codes(&facts("eu-west", &[("eu-bucket", "")])),
        ["artifact_region_missing"]
    );
}

#[test]
fn data_written_outside_the_allowed_regions() {
    assert_eq!(
        codes(&facts("eu-west", &[("us-bucket", "us-east")])),
        [
            "written_region_not_allowed",
            "written_outside_run_region",
            "location_region_not_allowed",
            "location_outside_run_region"
        ]
    );
    assert_eq!(
        codes(&facts("us-east", &[])),
        ["region_not_allowed"],
        "the run itself"
    );
}

#[test]
fn a_location_retagged_after_the_run_is_caught_by_its_current_tag() {
    let mut r = rules();
    r.locations.get_mut("eu-bucket").unwrap().region = "us-east".into();
    let got: Vec<_> = check(&r, &facts("eu-west", &[("eu-bucket", "eu-west")]))
        .into_iter()
        .map(|f| (f.code, f.region))
        .collect();
    assert_eq!(
        got,
        [
            (
                "location_region_not_allowed".to_string(),
                "us-east".to_string()
            ),
            ("location_outside_run_region".into(), "us-east".into())
        ]
    );
}

#[test]
fn replicas_and_unknown_locations() {
    let f = check(&rules(), &facts("eu-west", &[("mirrored", "eu-west")]));
    let got: Vec<_> = f
        .iter()
        .map(|f| (f.code.as_str(), f.location.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("replica_region_not_allowed", Some("us-bucket")),
            ("replica_outside_run_region", Some("us-bucket"))
        ]
    );
    assert_eq!(
        codes(&facts("eu-west", &[("gone", "eu-west")])),
        ["location_unknown"]
    );
}

#[test]
fn tenants_without_rules_are_checked_for_everything_else() {
    let mut f = facts("eu-west", &[("us-bucket", "us-east")]);
    f.tenant = TenantId::new("gone").unwrap();
    assert_eq!(
        check(&rules(), &f)
            .into_iter()
            .map(|f| f.code)
            .collect::<Vec<_>>(),
        ["written_outside_run_region", "location_outside_run_region"]
    );
}

#[test]
fn every_code_is_documented() {
    let documented: Vec<&str> = CODES.iter().map(|(c, _)| *c).collect();
    for f in [
        facts("", &[("gone", ""), ("mirrored", "EU")]),
        facts("us-east", &[("us-bucket", "us-east"), ("eu-bucket", "x")]),
        facts(
            "eu-west",
            &[("us-bucket", "us-east"), ("mirrored", "eu-west")],
        ),
        facts("Eu", &[]),
    ] {
        for finding in check(&rules(), &f) {
            assert!(
                documented.contains(&finding.code.as_str()),
                "{}",
                finding.code
            );
        }
    }
}

#[test]
fn ids_are_stable_and_distinguish_locations() {
    let f = facts(
        "eu-west",
        &[("us-bucket", "us-east"), ("mirrored", "eu-west")],
    );
    let a = check(&rules(), &f);
    let b = check(&rules(), &f);
    let ids: Vec<_> = a.iter().map(|x| Violation::id_of(&f, x)).collect();
    assert_eq!(
        ids,
        b.iter()
            .map(|x| Violation::id_of(&f, x))
            .collect::<Vec<_>>()
    );
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
}

#[test]
fn open_violations_block_their_location_or_region() {
    let f = facts("us-east", &[("us-bucket", "us-east")]);
    let mut vs: Vec<Violation> = check(&rules(), &f)
        .into_iter()
        .map(|x| Violation::new(&f, x, Timestamp::UNIX_EPOCH))
        .collect();
    let b = Blocks::of(&vs);
    let acme = &b.tenants["acme"];
    assert_eq!(acme.locations, ["us-bucket".to_string()].into());
    assert_eq!(acme.regions, ["us-east".to_string()].into());
    for v in &mut vs {
        v.resolved = Some(Resolution {
            at: Timestamp::UNIX_EPOCH,
            by: "ops".into(),
            reason: "moved".into(),
        });
    }
    assert!(Blocks::of(&vs).tenants.is_empty());
}
