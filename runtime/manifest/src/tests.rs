use super::*;

const GOOD: &str = r#"
manifest-version = 1
id = "org.example.mobility-footprint"
name = "Mobility footprint"
version = "1.0.0"
world = "service"
description = "CO2 of your trips"

[[permissions]]
doctype = "io.domicile.mobility.trip"
access = ["read"]
fields = ["start", "mode"]
purpose = "Compute the CO2 footprint of your trips"

[limits]
memory-mib = 64
cpu-ms = 2000
"#;

fn error_of(text: &str) -> String {
    Manifest::parse(text).expect_err("manifest should be rejected").to_string()
}

#[test]
fn parses_a_complete_manifest() {
    let m = Manifest::parse(GOOD).unwrap();
    assert_eq!(m.id.as_str(), "org.example.mobility-footprint");
    assert_eq!(m.world, World::Service);
    assert_eq!(m.version, semver::Version::new(1, 0, 0));
    assert_eq!(m.limits.memory_mib.unwrap().get(), 64);
    let p = m.permission(&"io.domicile.mobility.trip".parse().unwrap()).unwrap();
    assert!(p.access.contains(Access::Read) && !p.access.contains(Access::Write));
    assert_eq!(p.fields.as_ref().unwrap().len(), 2);
}

#[test]
fn unknown_field_is_named_with_its_line() {
    let err = error_of(&GOOD.replace("world = \"service\"", "world = \"service\"\nnetwork = true"));
    assert!(err.contains("network"), "{err}");
    assert!(err.contains("line 7"), "{err}");
}

#[test]
fn missing_purpose_is_named() {
    let err = error_of(&GOOD.replace("purpose = \"Compute the CO2 footprint of your trips\"\n", ""));
    assert!(err.contains("missing field `purpose`"), "{err}");
}

#[test]
fn vague_purpose_is_rejected() {
    let err = error_of(&GOOD.replace("Compute the CO2 footprint of your trips", "data"));
    assert!(err.contains("purpose"), "{err}");
}

#[test]
fn bad_ids_and_doctypes_are_named() {
    for bad in ["Org.Example", "example", "org..x", "org.example/../x", "org.1x"] {
        let err = error_of(&GOOD.replace("org.example.mobility-footprint", bad));
        assert!(err.contains("app id"), "{bad}: {err}");
        assert!(err.contains("line 3"), "{bad}: {err}");
    }
    let err = error_of(&GOOD.replace("io.domicile.mobility.trip", "trips"));
    assert!(err.contains("doctype"), "{err}");
}

#[test]
fn bad_world_version_access_and_limits_are_named() {
    let err = error_of(&GOOD.replace("\"service\"", "\"daemon\""));
    assert!(err.contains("daemon") && err.contains("service"), "{err}");
    let err = error_of(&GOOD.replace("\"1.0.0\"", "\"one\""));
    assert!(err.contains("line 5"), "{err}");
    let err = error_of(&GOOD.replace("[\"read\"]", "[\"rwx\"]"));
    assert!(err.contains("rwx"), "{err}");
    let err = error_of(&GOOD.replace("[\"read\"]", "[]"));
    assert!(err.contains("at least one"), "{err}");
    let err = error_of(&GOOD.replace("memory-mib = 64", "memory-mib = 0"));
    assert!(err.contains("memory-mib"), "{err}");
    let err = error_of(&GOOD.replace("manifest-version = 1", "manifest-version = 2"));
    assert!(err.contains("manifest-version"), "{err}");
}

#[test]
fn fields_without_read_and_duplicate_doctypes_are_rejected() {
    let err = error_of(&GOOD.replace("[\"read\"]", "[\"write\"]"));
    assert!(err.contains("fields"), "{err}");
    let dup = format!(
        "{GOOD}\n[[permissions]]\ndoctype = \"io.domicile.mobility.trip\"\naccess = [\"write\"]\npurpose = \"Store the trips again\"\n"
    );
    let dup = dup.replace("[limits]\nmemory-mib = 64\ncpu-ms = 2000\n", "");
    assert!(error_of(&dup).contains("two [[permissions]]"));
}

#[test]
fn not_toml_at_all_is_an_error_not_a_panic() {
    assert!(Manifest::from_bytes(&[0xff, 0xfe, 0x00]).is_err());
    assert!(Manifest::parse("id = ").is_err());
    assert!(Manifest::parse("").unwrap_err().to_string().contains("missing field"));
}

#[test]
fn grants_stay_within_the_manifest() {
    let m = Manifest::parse(GOOD).unwrap();
    let trip: Doctype = "io.domicile.mobility.trip".parse().unwrap();
    let all = Grants::all(&m);
    assert!(all.allows(&trip, Access::Read));
    assert!(!all.allows(&trip, Access::Write));

    let g = Grants::from_specs(&m, &["io.domicile.mobility.trip:read"]).unwrap();
    assert_eq!(g, all);
    assert!(matches!(
        Grants::from_specs(&m, &["io.domicile.mobility.trip:write"]),
        Err(GrantError::AccessNotDeclared { .. })
    ));
    assert!(matches!(
        Grants::from_specs(&m, &["io.domicile.bank.operation:read"]),
        Err(GrantError::NotDeclared { .. })
    ));
    assert!(matches!(Grants::from_specs(&m, &["nonsense"]), Err(GrantError::Syntax(_))));

    let mut g = all.clone();
    g.remove(&all);
    assert!(g.is_empty());
    assert!(!g.allows(&trip, Access::Read));
    assert_eq!(g.to_string(), "nothing");
}
