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
    g.revoke(&m, &["io.domicile.mobility.trip:read"]).unwrap();
    assert!(g.is_empty());
    assert!(!g.allows(&trip, Access::Read));
    assert_eq!(g.to_string(), "nothing");

    let mut g = all.clone();
    g.revoke::<&str>(&m, &[]).unwrap();
    assert!(g.is_empty(), "naming nothing takes back everything, as `all` does");
}

fn fields(list: &[&str]) -> Option<std::collections::BTreeSet<FieldName>> {
    Some(list.iter().map(|f| f.parse().unwrap()).collect())
}

#[test]
fn a_read_can_be_granted_for_some_fields_only() {
    let m = Manifest::parse(GOOD).unwrap();
    let trip: Doctype = "io.domicile.mobility.trip".parse().unwrap();
    assert_eq!(Grants::all(&m).readable_fields(&m, &trip), fields(&["mode", "start"]));

    let g = Grants::from_specs(&m, &["io.domicile.mobility.trip:read:mode"]).unwrap();
    assert!(g.allows(&trip, Access::Read));
    assert_eq!(g.readable_fields(&m, &trip), fields(&["mode"]));
    assert_eq!(g.to_string(), "io.domicile.mobility.trip:read:mode");
    // A field the manifest does not ask for cannot be granted.
    let err = Grants::from_specs(&m, &["io.domicile.mobility.trip:read:gps_points"]).unwrap_err();
    assert!(err.to_string().contains("`gps_points` is not one of them"), "{err}");

    // Granting more fields widens; granting the whole read widens to all declared.
    let mut wider = g.clone();
    wider.extend(&Grants::from_specs(&m, &["io.domicile.mobility.trip:read:start"]).unwrap());
    assert_eq!(wider.readable_fields(&m, &trip), fields(&["mode", "start"]));

    // Taking back one field keeps the others; the last one takes the read.
    let mut g = Grants::all(&m);
    g.revoke(&m, &["io.domicile.mobility.trip:read:start"]).unwrap();
    assert_eq!(g.readable_fields(&m, &trip), fields(&["mode"]));
    g.revoke(&m, &["io.domicile.mobility.trip:read:mode"]).unwrap();
    assert!(!g.allows(&trip, Access::Read));
}

const OPEN: &str = r#"
manifest-version = 1
id = "org.example.budget"
name = "Budget"
version = "1.0.0"
world = "service"
description = "Your budget"

[[permissions]]
doctype = "io.domicile.bank.operation"
access = ["read", "write"]
purpose = "Categorise your bank operations"
"#;

#[test]
fn fields_of_an_unrestricted_read_are_named_by_the_resident() {
    let m = Manifest::parse(OPEN).unwrap();
    let op: Doctype = "io.domicile.bank.operation".parse().unwrap();
    let all = Grants::all(&m);
    assert_eq!(all.readable_fields(&m, &op), None, "no manifest restriction: every field");
    let g = Grants::from_specs(&m, &["io.domicile.bank.operation:read,write:amount,date"]).unwrap();
    assert_eq!(g.readable_fields(&m, &op), fields(&["amount", "date"]));
    assert!(g.allows(&op, Access::Write));
    // Without a list, single fields cannot be taken back: the error says what to do.
    let mut all = all;
    let err = all.revoke(&m, &["io.domicile.bank.operation:read:amount"]).unwrap_err();
    assert!(err.to_string().contains("revoke `io.domicile.bank.operation:read`"), "{err}");
    assert!(matches!(
        Grants::from_specs(&m, &["io.domicile.bank.operation:write:amount"]),
        Err(GrantError::FieldsWithoutRead { .. })
    ));
}

#[test]
fn an_update_keeps_only_what_the_new_version_still_asks() {
    let old = Manifest::parse(OPEN).unwrap();
    let new = Manifest::parse(&OPEN.replace("[\"read\", \"write\"]", "[\"read\"]").replace("\"1.0.0\"", "\"1.1.0\""))
        .unwrap();
    let op: Doctype = "io.domicile.bank.operation".parse().unwrap();
    let carried = Grants::all(&old).within(&old, &new);
    assert!(carried.allows(&op, Access::Read));
    assert!(!carried.allows(&op, Access::Write));
    assert!(new.new_asks_over(&old).is_empty(), "asking for less needs no new grant");
    let asks = old.new_asks_over(&new);
    assert_eq!(asks.len(), 1);
    assert!(asks[0].starts_with("write io.domicile.bank.operation"), "{asks:?}");

    let trip = Manifest::parse(GOOD).unwrap();
    let more_fields =
        Manifest::parse(&GOOD.replace("[\"start\", \"mode\"]", "[\"start\", \"mode\", \"distance_m\"]")).unwrap();
    assert_eq!(
        more_fields.new_asks_over(&trip),
        vec!["read more fields of io.domicile.mobility.trip: distance_m".to_owned()]
    );
}

#[test]
fn egress_destinations_are_https_or_local_and_in_normal_form() {
    let with = |dest: &str| {
        format!(
            "{GOOD}\n[egress]\ndestinations = [\"{dest}\"]\npurpose = \"Contribute to the city's mobility survey\"\n"
        )
        .replace("[limits]\nmemory-mib = 64\ncpu-ms = 2000\n", "")
    };
    let m = Manifest::parse(&with("https://survey.example.org/mobility")).unwrap();
    assert!(m.declares_destination("https://survey.example.org/mobility"));
    assert!(!m.declares_destination("https://survey.example.org/other"));
    assert!(Manifest::parse(&with("http://127.0.0.1:8099/survey")).is_ok());
    for (bad, why) in [
        ("http://survey.example.org/x", "https"),
        ("ftp://example.org/x", "https"),
        ("https://user:pw@example.org/x", "credentials"),
        ("https://example.org/x#frag", "fragment"),
        ("https://EXAMPLE.org/x", "normal form"),
        ("survey", "absolute URL"),
    ] {
        let err = error_of(&with(bad));
        assert!(err.contains(why), "{bad}: {err}");
    }
    let new = Manifest::parse(&with("https://survey.example.org/mobility")).unwrap();
    let old = Manifest::parse(GOOD).unwrap();
    assert_eq!(new.new_asks_over(&old).len(), 1);
}

fn with_triggers(triggers: &str) -> String {
    GOOD.replace("\n[limits]", &format!("\n{triggers}\n[limits]"))
}

#[test]
fn triggers_are_read_and_said_in_words() {
    let m = Manifest::parse(&with_triggers(
        r#"
[[triggers]]
schedule = "weekly MON 08:00"
purpose = "Sum up your week every Monday"

[[triggers]]
on-change = "io.domicile.mobility.trip"
purpose = "Refresh the footprint when new trips arrive"

[[triggers]]
schedule = "every 90m"
purpose = "Refresh it through the day"
"#,
    ))
    .unwrap();
    let keys: Vec<String> = m.triggers.iter().map(Trigger::key).collect();
    assert_eq!(keys, ["schedule weekly mon 08:00", "on-change io.domicile.mobility.trip", "schedule every 90m"]);
    assert_eq!(m.triggers[0].when(), "every Monday at 08:00");
    assert!(m.triggers[1].when().starts_with("when io.domicile.mobility.trip documents are added"));
    assert_eq!(m.triggers[2].when(), "every 90 minutes");
    assert_eq!("every 6h".parse::<Schedule>().unwrap().describe(), "every 6 hours");
    assert_eq!("every 1d".parse::<Schedule>().unwrap().to_string(), "every 1d");
    let asks = m.describe_asks();
    assert!(
        asks.contains("to run on its own every Monday at 08:00 (you can switch this off)\n      why: Sum up your week"),
        "{asks}"
    );
}

#[test]
fn bad_triggers_are_refused_saying_why() {
    let cases = [
        ("[[triggers]]\nschedule = \"daily 7:00\"\npurpose = \"Tell you each morning\"", "`7:00` is not a time of day"),
        ("[[triggers]]\nschedule = \"daily 24:00\"\npurpose = \"Tell you each morning\"", "`24:00` is not a time of day"),
        ("[[triggers]]\nschedule = \"weekly someday 08:00\"\npurpose = \"Tell you each week\"", "not a day of the week"),
        ("[[triggers]]\nschedule = \"every 5m\"\npurpose = \"Check very often\"", "15 minutes to 7 days"),
        ("[[triggers]]\nschedule = \"at dawn\"\npurpose = \"Tell you each morning\"", "is not a schedule"),
        ("[[triggers]]\npurpose = \"Tell you each morning\"", "either `schedule` or `on-change`"),
        (
            "[[triggers]]\nschedule = \"daily 07:00\"\non-change = \"io.domicile.mobility.trip\"\npurpose = \"Tell you each morning\"",
            "either `schedule` or `on-change`",
        ),
        ("[[triggers]]\non-change = \"io.domicile.bank.operation\"\npurpose = \"Watch your bank\"", "does not ask to read"),
        ("[[triggers]]\nschedule = \"daily 07:00\"\nwhy = \"x\"", "unknown field `why`"),
        (
            "[[triggers]]\nschedule = \"daily 07:00\"\npurpose = \"Tell you each morning\"\n\n[[triggers]]\nschedule = \"daily 07:00\"\npurpose = \"Tell you again\"",
            "are the same",
        ),
    ];
    for (triggers, expected) in cases {
        let err = error_of(&with_triggers(triggers));
        assert!(err.contains(expected), "{triggers}: {err}");
    }
    let importer = with_triggers("[[triggers]]\nschedule = \"daily 07:00\"\npurpose = \"Import each morning\"")
        .replace("world = \"service\"", "world = \"importer\"");
    assert!(error_of(&importer).contains("only a service has [[triggers]]"));
}

#[test]
fn a_trigger_an_update_adds_is_a_new_ask() {
    let old = Manifest::parse(GOOD).unwrap();
    let new = Manifest::parse(&with_triggers(
        "[[triggers]]\non-change = \"io.domicile.mobility.trip\"\npurpose = \"Refresh when new trips arrive\"",
    ))
    .unwrap();
    let asks = new.new_asks_over(&old);
    assert_eq!(asks.len(), 1, "{asks:?}");
    assert!(asks[0].starts_with("run on its own when io.domicile.mobility.trip documents"), "{asks:?}");
    assert!(asks[0].contains("off until you switch it on"), "{asks:?}");
    assert!(new.new_asks_over(&new).is_empty());
}
