//! Config loading: precedence, unknown keys, validation messages, the example file.

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn layer(text: &str) -> Vec<Layer<'_>> {
    vec![Layer {
        name: "config file test.toml".into(),
        text,
    }]
}

#[test]
fn defaults_are_valid() {
    let c = load(&[], &BTreeMap::new(), &Overrides::default()).unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn file_then_env_then_flags() {
    let text = "listen = \"127.0.0.1:9000\"\n[limits]\nrunners = 8\ntenant_rate = 5\n";
    let c = load(
        &layer(text),
        &env(&[
            ("MAESTRO_LIMITS__RUNNERS", "16"),
            ("MAESTRO_URL", "http://ignored"),
            ("HOME", "/root"),
        ]),
        &Overrides {
            listen: Some("127.0.0.1:9100".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(c.limits.runners, 16);
    assert_eq!(c.limits.tenant_rate, 5);
    assert_eq!(c.listen, "127.0.0.1:9100");
}

#[test]
fn unknown_keys_name_their_layer() {
    let e = load(
        &layer("[limits]\nrunerrs = 3\n"),
        &BTreeMap::new(),
        &Overrides::default(),
    )
    .unwrap_err();
    assert_eq!(e.origin, "config file test.toml");
    assert!(e.message.contains("runerrs"), "{e}");
    let e = load(
        &[],
        &env(&[("MAESTRO_LIMITS__RUNERRS", "3")]),
        &Overrides::default(),
    )
    .unwrap_err();
    assert_eq!(e.origin, "MAESTRO_LIMITS__RUNERRS");
    let e = load(
        &layer("listen = 3\n"),
        &BTreeMap::new(),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(e.message.contains("listen"), "{e}");
    let e = load(
        &layer("not toml ["),
        &BTreeMap::new(),
        &Overrides::default(),
    )
    .unwrap_err();
    assert_eq!(e.origin, "config file test.toml");
}

#[test]
fn env_values_parse_as_toml_or_strings() {
    let c = load(
        &[],
        &env(&[
            ("MAESTRO_REGIONS", "[\"eu-west\", \"us-east\"]"),
            ("MAESTRO_DATA_DIR", "/var/lib/maestro"),
            ("MAESTRO_ACTIONS__EXEC__ENABLED", "true"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.regions, ["eu-west", "us-east"]);
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/maestro"));
    assert!(c.actions.exec.enabled);
}

#[test]
fn semantic_checks_say_what_to_fix() {
    let cases = [
        ("listen = \"nowhere\"", "listen"),
        (
            "[limits]\nexecution_timeout = \"10\"",
            "limits.execution_timeout",
        ),
        ("[limits]\nrunners = 0", "limits.runners"),
        (
            "[features]\nconsole_readonly = false",
            "features.console_readonly",
        ),
        ("regions = [\"EU\"]", "regions"),
        (
            "regions = [\"eu\"]\n[locations.b]\nregion = \"us\"",
            "locations.b",
        ),
        ("[tenants.Acme]", "tenants.Acme"),
        (
            "regions = [\"eu\"]\n[tenants.acme]\nallowed_regions = [\"us\"]",
            "tenants.acme",
        ),
        (
            "[[tokens]]\nname = \"t\"\nsha256 = \"sha256:00\"\nroles = [\"viewer\"]\ntenant = \"acme\"\n[tenants.acme]",
            "tokens[0] (t)",
        ),
        (
            "[[tokens]]\nname = \"t\"\nsha256 = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\nroles = [\"viewer\"]\ntenant = \"nope\"",
            "tokens[0] (t)",
        ),
        (
            "[[tokens]]\nname = \"t\"\nsha256 = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\nroles = [\"viewer\"]",
            "tokens[0] (t)",
        ),
        (
            "[oidc]\nissuer = \"https://i.test\"\nalgorithms = [\"HS256\"]",
            "oidc.algorithms",
        ),
        (
            "[oidc]\nissuer = \"https://i.test\"\nalgorithms = [\"none\"]",
            "oidc.algorithms",
        ),
        ("[oidc]\nissuer = \"ftp://i.test\"", "oidc.issuer"),
        ("[oidc]\nleeway = \"1h\"", "oidc.leeway"),
        (
            "[oidc]\nissuer = \"https://i.test\"\njwks_url = \"https://k\"\njwks_file = \"/k\"",
            "oidc",
        ),
    ];
    for (text, origin) in cases {
        let e = load(&layer(text), &BTreeMap::new(), &Overrides::default()).unwrap_err();
        assert_eq!(e.origin, origin, "{text}: {e}");
    }
}

#[test]
fn the_example_file_lists_the_defaults() {
    let text = include_str!("../../config.example.toml");
    let c = load(&layer(text), &BTreeMap::new(), &Overrides::default()).unwrap();
    assert_eq!(
        c,
        Config::default(),
        "config.example.toml and Config::default() differ"
    );
    // Every key of the defaults appears in the example (commented or not).
    let defaults = toml::to_string(&Config::default()).unwrap();
    for line in defaults.lines() {
        if let Some((key, _)) = line.split_once(" = ") {
            let listed =
                text.contains(&format!("{key} = ")) || text.contains(&format!("[[{key}]]"));
            assert!(listed, "config.example.toml lacks {key}");
        }
    }
}

#[test]
fn layers_merge_sections() {
    let demo = "[tenants.acme]\nweight = 2\n[locations.eu]\nregion = \"eu-west\"\n";
    let file = "[tenants.acme]\nrate = 50\n";
    let c = load(
        &[
            Layer {
                name: "demo".into(),
                text: demo,
            },
            Layer {
                name: "file".into(),
                text: file,
            },
        ],
        &BTreeMap::new(),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.tenants["acme"].weight, 2);
    assert_eq!(c.tenants["acme"].rate, Some(50));
    assert_eq!(c.locations["eu"].region, "eu-west");
}

#[test]
fn the_appliance_url_is_the_listen_address_with_wildcards_as_loopback() {
    let url = |listen: &str| {
        Config {
            listen: listen.into(),
            ..Config::default()
        }
        .self_url()
    };
    assert_eq!(url("127.0.0.1:7070"), "http://127.0.0.1:7070");
    assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080");
    assert_eq!(url("[::]:8080"), "http://[::1]:8080");
    assert_eq!(url("10.0.0.5:80"), "http://10.0.0.5:80");
}

#[test]
fn golden_settings_are_checked() {
    let c = Config {
        golden: GoldenConfig {
            tenant: Some("nobody".into()),
            ..GoldenConfig::default()
        },
        ..Config::default()
    };
    assert!(
        c.validate()
            .unwrap_err()
            .to_string()
            .contains("golden.tenant")
    );
    let c = Config {
        golden: GoldenConfig {
            interval: "0s".into(),
            ..GoldenConfig::default()
        },
        ..Config::default()
    };
    assert!(
        c.validate()
            .unwrap_err()
            .to_string()
            .contains("golden.interval")
    );
}
