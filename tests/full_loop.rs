//! The whole loop on the real binary and a real store on disk: signed
//! package → verify → install with grants → sandboxed import and run →
//! documents → audit. Plus the ways a package or a grant must fail.

mod common;

use std::collections::BTreeMap;

use common::*;

/// A trip the trip schema accepts, for the snooper to write.
const SNOOPED_TRIP: &str = r#"{"doctype": "io.domicile.mobility.trip", "body": {"start": "2026-03-09T08:00:00Z", "end": "2026-03-09T08:30:00Z", "date": "2026-03-09", "month": "2026-03", "distance_m": 4000, "duration_s": 1800, "mode": "bike"}}"#;

fn install_samples(home: &TestHome) {
    home.install(&sample_package("gpx-importer"), &["all"]);
    home.install(&sample_package("mobility-footprint"), &["all"]);
    assert_eq!(home.installed_apps(), vec![IMPORTER, FOOTPRINT]);
}

#[test]
fn import_then_run_computes_the_footprint_of_the_imported_trips() {
    let home = TestHome::new();
    install_samples(&home);

    let summary = home.ok(&["--json", "import", IMPORTER, sample_gpx().to_str().unwrap()]).json();
    assert_eq!(summary["trips"], 14);

    // The trips are what the sample file holds (it was generated with these
    // legs: bike 6 km, car 12 km, walk 1.2 km, TGV 340 km).
    let trips = home.docs(TRIP);
    assert_eq!(trips.len(), 14);
    let mut per_mode: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for t in &trips {
        let body = &t["body"];
        per_mode
            .entry(body["mode"].as_str().unwrap().to_owned())
            .or_default()
            .push(body["distance_m"].as_f64().unwrap());
        assert_eq!(t["meta"]["created_by"]["id"], IMPORTER, "provenance records the importer");
    }
    let expected = [("bike", 8, 6_000.0), ("car", 2, 12_000.0), ("train", 2, 340_000.0), ("walk", 2, 1_200.0)];
    for (mode, count, metres) in expected {
        let got = &per_mode[mode];
        assert_eq!(got.len(), count, "{mode} trips");
        for d in got {
            assert!((d - metres).abs() / metres < 0.03, "{mode} trip of {d} m, expected about {metres}");
        }
    }

    // What the importer logged is in its app log.
    assert!(home.ok(&["logs", "--app", IMPORTER]).stdout.contains("1448 points, 14 trips"));

    // Re-importing the same file creates no duplicates.
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);
    assert_eq!(home.docs(TRIP).len(), 14);

    // The service's result, checked against our own sum over the documents.
    let factors = serde_json::json!({ "car": 0.2, "train": 0.01, "bike": 0.0, "walk": 0.0 });
    let input = serde_json::json!({ "factors": factors }).to_string();
    let report = home.ok(&["--json", "run", FOOTPRINT, "--input", &input]).json();
    let mut expected_kg = 0.0;
    let mut expected_month: BTreeMap<(String, String), f64> = BTreeMap::new();
    for t in &trips {
        let b = &t["body"];
        let kg = b["distance_m"].as_f64().unwrap() / 1000.0 * factors[b["mode"].as_str().unwrap()].as_f64().unwrap();
        expected_kg += kg;
        *expected_month
            .entry((b["month"].as_str().unwrap().into(), b["mode"].as_str().unwrap().into()))
            .or_default() += kg;
    }
    assert!((report["total_kg_co2e"].as_f64().unwrap() - expected_kg).abs() < 0.01, "{report}");
    for ((month, mode), kg) in &expected_month {
        let got = report["months"][month][mode]["kg_co2e"].as_f64().unwrap();
        assert!((got - kg).abs() < 0.01, "{month} {mode}: {got} vs {kg}");
    }

    // The audit log shows who did what, and nothing else.
    let audit = home.audit();
    let ops: Vec<(String, String, u64, String)> = audit
        .iter()
        .map(|e| {
            (
                e["app"].as_str().unwrap().into(),
                e["operation"].as_str().unwrap().into(),
                e["documents"].as_u64().unwrap(),
                e["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        vec![
            (IMPORTER.into(), "put".into(), 14, "allowed".into()),
            (IMPORTER.into(), "put".into(), 14, "allowed".into()),
            (FOOTPRINT.into(), "query".into(), 14, "allowed".into()),
        ]
    );

    // Without --json, `run` draws the service's view: a stacked bar per
    // month whose total is that month's CO2, and says where the data is.
    let drawn = home.ok(&["run", FOOTPRINT, "--input", &input]).stdout;
    assert!(drawn.starts_with("Mobility footprint\n=================="), "{drawn}");
    assert!(drawn.contains("CO2 per month and mode (kg CO2e)"), "{drawn}");
    for month in expected_month.keys().map(|(m, _)| m).collect::<std::collections::BTreeSet<_>>() {
        let total: f64 = expected_month.iter().filter(|((m, _), _)| m == month).map(|(_, kg)| kg).sum();
        let line = drawn.lines().find(|l| l.starts_with(month.as_str())).unwrap_or_else(|| panic!("{month}: {drawn}"));
        let shown: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((shown - total).abs() < 0.01, "{line} vs {total}");
    }
    assert!(drawn.trim_end().ends_with("(the whole output, data included: --json)"), "{drawn}");
    assert!(audit.iter().all(|e| e["doctype"] == TRIP));
    let version_of = |app: &str| {
        let apps = home.ok(&["--json", "apps"]).json();
        apps.as_array().unwrap().iter().find(|a| a["id"] == app).unwrap()["version"].clone()
    };
    assert!(audit.iter().all(|e| e["app_version"] == version_of(e["app"].as_str().unwrap())));
}

/// The demo runs twice over its own directory. Its home keeps the apps it
/// compiles in the user's cache folder, shared by their homes, for the
/// next demo (here the test suite's cache, under `XDG_CACHE_HOME`), and
/// its closing hints call the binary as it can be called: by its path,
/// when `domicile` is not on the PATH. What it prints is the transcript of
/// the resident's guide, but for its password, its audit chain's hash and
/// where it runs.
#[test]
fn the_demo_runs_on_a_fresh_directory_and_again_over_itself() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let xdg = dir.path().join("xdg-cache");
    std::fs::create_dir_all(xdg.join("domicile")).unwrap();
    std::fs::create_dir_all(shared_artifact_cache()).unwrap();
    std::os::unix::fs::symlink(shared_artifact_cache(), xdg.join("domicile/artifacts")).unwrap();
    for _ in 0..2 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_domicile"))
            .args(["demo", "--dir", demo.to_str().unwrap()])
            .env_remove("DOMICILE_HOME")
            .env_remove("DOMICILE_ARTIFACT_CACHE")
            .env("XDG_CACHE_HOME", &xdg)
            .env("PATH", "/usr/bin:/bin")
            // Views are drawn to the terminal's width: the guide's is 80 columns.
            .env_remove("COLUMNS")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        for expected in
            ["\"trips\":14", "total:", "base load", "mobility", "records", "nothing has left", "chain intact"]
        {
            assert!(stdout.contains(expected), "`{expected}` missing from the demo:\n{stdout}");
        }
        assert!(!demo.join("cache").exists(), "the compiled apps are in the user's cache, not the demo's");
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_domicile")).canonicalize().unwrap();
        assert!(stdout.contains(&format!("  {} --home {} apps", binary.display(), demo.display())), "{stdout}");
        assert!(
            stdout.contains("`domicile` is not on your PATH: `cargo install --path runtime/cli --locked`"),
            "{stdout}"
        );
        let run = stdout.replace(&binary.display().to_string(), "target/debug/domicile");
        assert_same_transcript(&run.replace(&demo.display().to_string(), "domicile-demo"));
    }
    // A directory that is not a demo is never replaced.
    let other = dir.path().join("precious");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("thesis.txt"), "keep me").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_domicile"))
        .args(["demo", "--dir", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(other.join("thesis.txt")).unwrap(), "keep me");
}

/// What differs from one demo to the next: its password and its audit
/// chain's last hash.
fn without_what_changes(transcript: &str) -> String {
    transcript
        .lines()
        .map(|line| match (line.split_once("last hash "), line.split_once("with the password ")) {
            (Some((before, _)), _) => format!("{before}last hash …"),
            (_, Some((before, _))) => format!("{before}with the password …"),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The demo's output is the transcript in the resident's guide
/// (`docs/resident.md`, "The demo, step by step"): run `cargo run -- demo`
/// in the repository and paste its output there when the demo changes.
fn assert_same_transcript(run: &str) {
    let guide = std::fs::read_to_string(repo().join("docs/resident.md")).unwrap();
    let section = &guide[guide.find("## The demo, step by step").unwrap()..];
    let start = section.find("```text\n").unwrap() + "```text\n".len();
    let transcript = &section[start..start + section[start..].find("```").unwrap()];
    let (run, transcript) = (without_what_changes(run.trim_end()), without_what_changes(transcript.trim_end()));
    if run != transcript {
        let differ = run.lines().zip(transcript.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "the demo no longer prints the transcript of docs/resident.md (first difference at line {}):\n  demo:  {:?}\n  guide: {:?}",
            differ + 1,
            run.lines().nth(differ),
            transcript.lines().nth(differ)
        );
    }
}

/// Where the parts of a package file are (see runtime/package).
fn package_offsets(bytes: &[u8]) -> (usize, usize, usize) {
    let manifest_len = u32::from_le_bytes(bytes[116..120].try_into().unwrap()) as usize;
    let signature = 60;
    let manifest = 120 + manifest_len / 2;
    let component = 128 + manifest_len + 200;
    (signature, manifest, component)
}

#[test]
fn a_package_with_one_flipped_byte_is_refused_and_nothing_is_installed() {
    let home = TestHome::new();
    let original = std::fs::read(sample_package("mobility-footprint")).unwrap();
    let (signature, manifest, component) = package_offsets(&original);
    for (part, offset) in [("signature", signature), ("manifest", manifest), ("component", component)] {
        let mut bytes = original.clone();
        bytes[offset] ^= 0x20;
        let path = home.path().join(format!("tampered-{part}.dpkg"));
        std::fs::write(&path, &bytes).unwrap();
        let run = home.install(&path, &["all"]);
        let err = run.one_line_error();
        assert!(err.contains("signature does not verify"), "{part}: {err}");
        assert!(home.installed_apps().is_empty(), "{part}: something was installed");
        assert!(!home.run(&["verify", path.to_str().unwrap()]).ok, "{part}: verify accepted it");
    }
    assert!(home
        .ok(&["verify", sample_package("mobility-footprint").to_str().unwrap()])
        .stdout
        .contains("valid signature"));
    // Against an explicit key, no home is needed.
    let key = repo().join("sample-apps/keys/sample-publisher.pub");
    let homeless = std::process::Command::new(env!("CARGO_BIN_EXE_domicile"))
        .args(["verify", "--key", key.to_str().unwrap(), sample_package("mobility-footprint").to_str().unwrap()])
        .env_remove("DOMICILE_HOME")
        .output()
        .unwrap();
    assert!(homeless.status.success(), "{}", String::from_utf8_lossy(&homeless.stderr));
    assert!(String::from_utf8_lossy(&homeless.stdout).contains("valid signature"));
}

#[test]
fn a_package_signed_by_an_untrusted_key_is_refused() {
    let home = TestHome::untrusting();
    let err = home.install(&sample_package("mobility-footprint"), &["all"]).one_line_error().to_owned();
    assert!(err.contains("not in the trust store") && err.contains("domicile trust add"), "{err}");
    assert!(home.installed_apps().is_empty());

    // A publisher's own key, valid signature, still untrusted here.
    let keys = tempfile::tempdir().unwrap();
    let prefix = keys.path().join("mallory");
    home.ok(&["keygen", "--out", prefix.to_str().unwrap()]);
    let component = keys.path().join("c.wasm");
    let original = std::fs::read(sample_package("mobility-footprint")).unwrap();
    let manifest_len = u32::from_le_bytes(original[116..120].try_into().unwrap()) as usize;
    std::fs::write(&component, &original[128 + manifest_len..]).unwrap();
    let package = keys.path().join("mallory.dpkg");
    home.ok(&[
        "pack",
        "--manifest",
        repo().join("manifests/mobility-footprint.toml").to_str().unwrap(),
        "--component",
        component.to_str().unwrap(),
        "--key",
        prefix.with_extension("key").to_str().unwrap(),
        "--out",
        package.to_str().unwrap(),
    ]);
    let trusted = TestHome::new();
    assert!(trusted.install(&package, &["all"]).one_line_error().contains("not in the trust store"));
    assert!(trusted.installed_apps().is_empty());
    // Trusting the key is what makes it installable.
    trusted.ok(&["trust", "add", prefix.with_extension("pub").to_str().unwrap()]);
    assert!(trusted.install(&package, &["all"]).ok);
}

#[test]
fn not_a_package_at_all_is_refused_with_a_clear_error() {
    let home = TestHome::new();
    let path = home.path().join("junk.dpkg");
    std::fs::write(&path, b"\0asm\x01\0\0\0 not a package").unwrap();
    assert!(home.install(&path, &["all"]).one_line_error().contains("not a domicile package"));
    let missing = home.install(&home.path().join("nope.dpkg"), &["all"]);
    assert!(missing.one_line_error().contains("cannot read"));
}

#[test]
fn undeclared_and_revoked_access_is_denied_to_the_guest_and_audited() {
    let home = TestHome::new();
    assert!(home.install(&fixture_package("snooper"), &["all"]).ok);

    // A doctype the manifest never declared: every call is refused as a
    // WIT error the guest handles (the run itself succeeds).
    let report = home.ok(&["--json", "run", SNOOPER, "--input", r#"{"doctype": "io.domicile.bank.operation"}"#]).json();
    for call in ["query", "get", "put", "delete"] {
        let err = report[call]["error"].as_str().unwrap_or_default();
        assert!(err.starts_with("denied: ") && err.contains("does not declare"), "{call}: {report}");
        assert!(err.contains("add it to a `[[permissions]]` of the manifest"), "says how to fix it: {err}");
    }

    // Declared and granted: allowed. Delete was never declared: denied.
    let report = home.ok(&["--json", "run", SNOOPER, "--input", SNOOPED_TRIP]).json();
    assert!(report["query"]["ok"].is_array(), "{report}");
    assert!(report["put"]["ok"].is_string(), "{report}");
    assert!(report["delete"]["error"].as_str().unwrap().starts_with("denied: "), "{report}");

    // A body that breaks the doctype's schema is refused as `invalid`, naming the field.
    let report = home
        .ok(&["run", SNOOPER, "--input", r#"{"doctype": "io.domicile.mobility.trip", "body": {"mode": "bike"}}"#])
        .json();
    let err = report["put"]["error"].as_str().unwrap_or_default();
    assert!(err.starts_with("invalid: ") && err.contains("\"start\" is a required property"), "{report}");

    // Revoked: refused at the next call.
    home.ok(&["revoke", SNOOPER]);
    let report = home.ok(&["--json", "run", SNOOPER, "--input", SNOOPED_TRIP]).json();
    for call in ["query", "get", "put"] {
        let err = report[call]["error"].as_str().unwrap_or_default();
        assert!(err.starts_with("denied: ") && err.contains("not granted"), "{call}: {report}");
        let access = if call == "put" { "write" } else { "read" };
        let fix = format!("`domicile grant {SNOOPER} io.domicile.mobility.trip:{access}`");
        assert!(err.contains(&fix), "says how to grant it: {err}");
    }

    let audit = home.audit();
    let denied = |doctype: &str, op: &str| {
        audit
            .iter()
            .filter(|e| {
                e["outcome"] == "denied" && e["doctype"] == doctype && e["operation"] == op && e["app"] == SNOOPER
            })
            .count()
    };
    assert_eq!(denied("io.domicile.bank.operation", "query"), 1);
    assert_eq!(denied("io.domicile.bank.operation", "put"), 1);
    assert_eq!(denied(TRIP, "delete"), 3);
    assert_eq!(denied(TRIP, "query"), 1, "the revoked read");
    assert_eq!(denied(TRIP, "put"), 1, "the revoked write");
    assert!(home.ok(&["audit", "--app", SNOOPER]).stdout.contains("DENIED"));
}

#[test]
fn reads_only_return_the_fields_the_manifest_declares() {
    let home = TestHome::new();
    install_samples(&home);
    home.install(&fixture_package("snooper"), &["all"]);
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);
    let report = home.ok(&["--json", "run", SNOOPER, "--input", r#"{"doctype": "io.domicile.mobility.trip"}"#]).json();
    let bodies = report["query"]["ok"].as_array().unwrap();
    assert_eq!(bodies.len(), 14);
    for body in bodies {
        let body: serde_json::Value = serde_json::from_str(body.as_str().unwrap()).unwrap();
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["mode"], "the snooper may only see `mode`");
    }

    // Nor can it learn a hidden field through what a selector matches.
    let probe = r#"{"doctype": "io.domicile.mobility.trip", "selector": {"distance_m": {"$gt": 100000}}}"#;
    let report = home.ok(&["--json", "run", SNOOPER, "--input", probe]).json();
    let err = report["query"]["error"].as_str().unwrap_or_default();
    assert!(err.starts_with("denied: ") && err.contains("`distance_m`"), "{report}");
    let allowed = r#"{"doctype": "io.domicile.mobility.trip", "selector": {"mode": "train"}}"#;
    let report = home.ok(&["--json", "run", SNOOPER, "--input", allowed]).json();
    assert_eq!(report["query"]["ok"].as_array().unwrap().len(), 2, "{report}");
}

#[test]
fn grants_are_partial_explicit_and_never_beyond_the_manifest() {
    let home = TestHome::new();
    // Without --grant and without a terminal, install asks to be explicit.
    let err = home.install(&fixture_package("snooper"), &[]).one_line_error().to_owned();
    assert!(err.contains("--grant"), "{err}");
    assert!(home.installed_apps().is_empty());

    let err =
        home.install(&fixture_package("snooper"), &["io.domicile.bank.operation:read"]).one_line_error().to_owned();
    assert!(err.contains("does not ask for"), "{err}");
    let err =
        home.install(&fixture_package("snooper"), &["io.domicile.mobility.trip:delete"]).one_line_error().to_owned();
    assert!(err.contains("not `delete`"), "{err}");

    assert!(home.install(&fixture_package("snooper"), &["io.domicile.mobility.trip:read"]).ok);
    let apps = home.ok(&["--json", "apps"]).json();
    assert_eq!(apps[0]["grants"], serde_json::json!({ TRIP: { "access": ["read"] } }));
    home.ok(&["grant", SNOOPER, "io.domicile.mobility.trip:write"]);
    let apps = home.ok(&["--json", "apps"]).json();
    assert_eq!(apps[0]["grants"], serde_json::json!({ TRIP: { "access": ["read", "write"] } }));

    // Installing twice is refused; uninstall keeps the resident's documents.
    assert!(home.install(&fixture_package("snooper"), &["all"]).one_line_error().contains("already installed"));
    home.ok(&["run", SNOOPER, "--input", SNOOPED_TRIP]);
    assert_eq!(home.docs(TRIP).len(), 1);
    home.ok(&["uninstall", SNOOPER]);
    assert!(home.installed_apps().is_empty());
    assert_eq!(home.docs(TRIP).len(), 1);
    assert!(home.run(&["run", SNOOPER]).one_line_error().contains("no app"));
}

#[test]
fn a_malformed_export_file_is_an_error_naming_the_line_and_writes_nothing() {
    let home = TestHome::new();
    install_samples(&home);
    let text = std::fs::read_to_string(sample_gpx()).unwrap();
    // Break one coordinate deep inside the file.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let target = lines.iter().position(|l| l.contains("2026-03-03T08:20:")).expect("a point to break");
    lines[target] = lines[target].replacen("lat=\"", "lat=\"north", 1);
    let broken = home.path().join("broken.gpx");
    std::fs::write(&broken, lines.join("\n")).unwrap();
    let err = home.run(&["import", IMPORTER, broken.to_str().unwrap()]).one_line_error().to_owned();
    assert!(err.contains(&format!("line {}", target + 1)), "{err}");
    assert!(home.docs(TRIP).is_empty(), "a failed import must write nothing");

    for (name, content) in
        [("empty.gpx", &b""[..]), ("binary.gpx", &[0xff, 0xfe, 0x00, 0x81][..]), ("notgpx.gpx", &b"<html></html>"[..])]
    {
        let path = home.path().join(name);
        std::fs::write(&path, content).unwrap();
        home.run(&["import", IMPORTER, path.to_str().unwrap()]).one_line_error();
    }
    assert!(home.docs(TRIP).is_empty());
}

#[test]
fn commands_fail_with_one_line_and_a_hint() {
    let home = TestHome::new();
    assert!(home.run(&["run", "org.example.nothing"]).one_line_error().contains("no app `org.example.nothing`"));
    assert!(home.run(&["run", "Not An Id"]).one_line_error().contains("app id"));
    assert!(home.run(&["docs", "trips"]).one_line_error().contains("doctype"));
    assert!(home.run(&["docs", TRIP, "--where", "{bad"]).one_line_error().contains("selector"));
    home.install(&sample_package("mobility-footprint"), &["all"]);
    assert!(home.run(&["import", FOOTPRINT, sample_gpx().to_str().unwrap()]).one_line_error().contains("domicile run"));
    assert!(home.run(&["run", FOOTPRINT, "--input", "{nope"]).one_line_error().contains("--input is not JSON"));
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_domicile"))
        .args(["--home", elsewhere.path().join("none").to_str().unwrap(), "apps"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("init"));
}

#[test]
fn residents_of_one_home_see_only_their_own_data() {
    let home = TestHome::new();
    home.ok(&["resident", "add", "alice"]);
    // With two residents, commands must say whose space they act on.
    assert!(home.run(&["apps"]).one_line_error().contains("--resident"));
    let importer = sample_package("gpx-importer");
    for who in ["me", "alice"] {
        home.ok(&["--resident", who, "install", importer.to_str().unwrap(), "--grant", "all"]);
    }
    home.ok(&["--resident", "me", "import", IMPORTER, sample_gpx().to_str().unwrap()]);
    assert_eq!(home.ok(&["--resident", "me", "--json", "docs", TRIP]).json().as_array().unwrap().len(), 14);
    assert!(home.ok(&["--resident", "alice", "--json", "docs", TRIP]).json().as_array().unwrap().is_empty());
    assert!(home.ok(&["--resident", "alice", "--json", "audit"]).json().as_array().unwrap().is_empty());
    // Through WIT: an app of alice's, granted everything it asks, sees none of mine.
    home.ok(&["--resident", "alice", "install", fixture_package("snooper").to_str().unwrap(), "--grant", "all"]);
    let report = home
        .ok(&["--resident", "alice", "run", SNOOPER, "--input", r#"{"doctype": "io.domicile.mobility.trip"}"#])
        .json();
    assert_eq!(report["query"]["ok"], serde_json::json!([]), "{report}");
    assert!(report["get"]["error"].as_str().unwrap().starts_with("not found"), "{report}");
    assert!(home.run(&["--resident", "../me", "apps"]).one_line_error().contains("resident name"));
    assert!(home.run(&["--resident", "bob", "apps"]).one_line_error().contains("no resident named `bob`"));
}

#[test]
fn export_and_restore_rebuild_the_space_in_another_home_and_apps_still_run() {
    let home = TestHome::new();
    install_samples(&home);
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);
    home.ok(&["run", FOOTPRINT]);
    let archive = home.path().join("me.tar");
    home.ok(&["export", "--out", archive.to_str().unwrap()]);

    let other = tempfile::tempdir().unwrap();
    let restored = TestHome { dir: other };
    // `restore` creates the home. Its apps come back because this home
    // trusts their publisher; each package is verified again against it.
    std::fs::copy(home.path().join("trust.json"), restored.path().join("trust.json")).unwrap();
    restored.ok(&["restore", archive.to_str().unwrap()]);
    assert_eq!(restored.docs(TRIP), home.docs(TRIP), "same documents, ids and provenance");
    assert_eq!(restored.audit(), home.audit(), "same audit log");
    assert!(restored.ok(&["check"]).stdout.contains("consistent: 14 documents"));
    // Exported again at the same (fixed) time: the same bytes.
    let again = restored.path().join("again.tar");
    restored.ok(&["export", "--out", again.to_str().unwrap()]);
    assert!(std::fs::read(&archive).unwrap() == std::fs::read(&again).unwrap(), "the round trip is exact");
    // The restored apps run from their restored, re-verified packages.
    assert!(restored.ok(&["--json", "run", FOOTPRINT]).json()["total_km"].as_f64().unwrap() > 700.0);
    // Restoring over an existing resident is refused.
    assert!(restored.run(&["restore", archive.to_str().unwrap()]).one_line_error().contains("already exists"));
}

#[test]
fn uninstall_with_purge_data_removes_what_the_app_created_and_leaves_no_index_entries() {
    let home = TestHome::new();
    install_samples(&home);
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);
    assert_eq!(home.docs(TRIP).len(), 14);
    let by_date =
        home.ok(&["--json", "docs", TRIP, "--where", r#"{"date": {"$gte": "2026-03-01"}}"#, "--sort=-date"]).json();
    let dates: Vec<&str> = by_date.as_array().unwrap().iter().map(|d| d["body"]["date"].as_str().unwrap()).collect();
    assert_eq!(dates.len(), 7);
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "descending: {dates:?}");
    let feed_before = home.ok(&["--json", "changes", TRIP]).stdout.lines().count();
    home.ok(&["uninstall", IMPORTER, "--purge-data"]);
    assert!(home.docs(TRIP).is_empty());
    assert!(home.ok(&["check"]).stdout.contains("consistent: 0 documents, 0 index entries"));
    assert_eq!(
        home.ok(&["--json", "changes", TRIP]).stdout.lines().count(),
        feed_before + 14,
        "deletions are in the feed"
    );
    assert_eq!(home.ok(&["--json", "quota"]).json()["usage"]["documents"], 0);
}

#[test]
fn a_quota_stops_an_import_with_a_limit_error_and_writes_nothing() {
    let home = TestHome::new();
    install_samples(&home);
    home.ok(&["quota", "--max-documents", "10"]);
    let err = home.run(&["import", IMPORTER, sample_gpx().to_str().unwrap()]).one_line_error().to_owned();
    assert!(err.contains("quota exceeded") && err.contains("nothing was imported"), "{err}");
    assert!(home.docs(TRIP).is_empty());
    home.ok(&["quota", "--max-documents", "100"]);
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);
    assert_eq!(home.docs(TRIP).len(), 14);
}

#[test]
fn bench_measures_every_row_against_its_baseline() {
    // Tiny sizes: this checks that every measurement runs and is reported,
    // never how fast anything is.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_domicile"))
        .args(["--json", "bench", "--invocations", "20", "--documents", "300", "--rows", "400", "--spin", "1000"])
        .env_remove("DOMICILE_HOME")
        .env("DOMICILE_ARTIFACT_CACHE", shared_artifact_cache())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (row, key) in [
        ("trivial_invocation", "ratio_p50"),
        ("scan", "ratio"),
        ("import", "throughput_vs_native"),
        ("epoch_interruption", "overhead_pct"),
    ] {
        assert!(report[row][key].is_number(), "{row}.{key} missing: {report}");
    }
    assert_eq!(report["scan"]["documents"], 300);
    assert_eq!(report["import"]["rows"], 400);
}

/// The entries of an export archive, to edit as an attacker would.
fn archive_entries(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let mut tar = tar::Archive::new(bytes.as_slice());
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

fn write_archive(path: &std::path::Path, entries: &[(String, Vec<u8>)]) {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, bytes.as_slice()).unwrap();
    }
    std::fs::write(path, tar.into_inner().unwrap()).unwrap();
}

fn entry<'a>(entries: &'a mut [(String, Vec<u8>)], name: &str) -> &'a mut Vec<u8> {
    &mut entries.iter_mut().find(|(n, _)| n.ends_with(name)).unwrap().1
}

/// Edits entry `name`'s JSON lines.
fn edit_jsonl(entries: &mut [(String, Vec<u8>)], name: &str, edit: impl FnOnce(&mut Vec<serde_json::Value>)) {
    let bytes = entry(entries, name);
    let mut lines: Vec<serde_json::Value> =
        bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    edit(&mut lines);
    *bytes = lines.iter().flat_map(|l| [serde_json::to_vec(l).unwrap(), b"\n".to_vec()].concat()).collect();
}

/// A home with the sample apps, an import and a run, exported.
fn exported_home() -> (TestHome, std::path::PathBuf) {
    let home = TestHome::new();
    install_samples(&home);
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);
    home.ok(&["run", FOOTPRINT]);
    let archive = home.path().join("me.tar");
    home.ok(&["export", "--out", archive.to_str().unwrap()]);
    (home, archive)
}

/// A restore into a home that trusts the sample publisher (or not).
fn restore_into(trusting: bool, archive: &std::path::Path) -> (TestHome, Run) {
    let home = if trusting { TestHome::new() } else { TestHome::untrusting() };
    // `init` made a resident `me`; the archive brings its own.
    let run = home.run(&["restore", archive.to_str().unwrap(), "--as", "restored"]);
    (home, run)
}

#[test]
fn restore_gives_an_archive_no_more_power_than_install_gives_a_package() {
    let (home, archive) = exported_home();
    let dir = tempfile::tempdir().unwrap();
    let residents = |h: &TestHome| h.ok(&["resident", "list"]).stdout;

    // A home that trusts no publisher gets the data, not the apps, and says so.
    let (untrusting, run) = restore_into(false, &archive);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains(&format!("{IMPORTER} was not restored: it is signed by")), "{}", run.stdout);
    assert!(untrusting.ok(&["--resident", "restored", "apps"]).stdout.contains("no apps installed"));
    assert_eq!(
        untrusting.ok(&["--resident", "restored", "docs", TRIP, "--json"]).json(),
        home.ok(&["docs", TRIP, "--json"]).json()
    );

    // Grants widened in the app record: cut back to what the signed manifest asks.
    let original_grants = home.ok(&["apps", "--json"]).json();
    let mut entries = archive_entries(&archive);
    edit_jsonl(&mut entries, "apps.jsonl", |apps| {
        for app in apps.iter_mut() {
            app["grants"]["io.domicile.bank.operation"] = serde_json::json!({"access": ["read"]});
        }
    });
    let widened = dir.path().join("widened.tar");
    write_archive(&widened, &entries);
    let (trusting, run) = restore_into(true, &widened);
    assert!(run.ok, "{}", run.stderr);
    let restored = trusting.ok(&["--resident", "restored", "apps", "--json"]).json();
    let grants =
        |apps: &serde_json::Value| apps.as_array().unwrap().iter().map(|a| a["grants"].clone()).collect::<Vec<_>>();
    assert_eq!(grants(&restored), grants(&original_grants));

    // Permissions and egress widened in the record's manifest: refused as edited.
    let mut entries = archive_entries(&archive);
    edit_jsonl(&mut entries, "apps.jsonl", |apps| {
        apps[0]["manifest"]["egress"] =
            serde_json::json!({"destinations": ["http://127.0.0.1:9/exfil"], "purpose": "Send your data elsewhere"})
    });
    let edited = dir.path().join("edited.tar");
    write_archive(&edited, &entries);
    let (other, run) = restore_into(true, &edited);
    assert!(run.one_line_error().contains("not what its signed package says"), "{}", run.stderr);
    assert!(!residents(&other).contains("restored"), "a refused archive restores nothing");

    // A package with one flipped byte in its component, or the package of another app.
    let mut entries = archive_entries(&archive);
    let package = entry(&mut entries, &format!("packages/{FOOTPRINT}.dpkg"));
    let last = package.len() - 10;
    package[last] ^= 1;
    let tampered = dir.path().join("tampered.tar");
    write_archive(&tampered, &entries);
    let (other, run) = restore_into(true, &tampered);
    assert!(run.one_line_error().contains(&format!("the package of {FOOTPRINT}")), "{}", run.stderr);
    assert!(run.one_line_error().contains("signature does not verify"), "{}", run.stderr);
    assert!(!residents(&other).contains("restored"));
    let mut entries = archive_entries(&archive);
    let importer = entry(&mut entries, &format!("packages/{IMPORTER}.dpkg")).clone();
    *entry(&mut entries, &format!("packages/{FOOTPRINT}.dpkg")) = importer;
    let swapped = dir.path().join("swapped.tar");
    write_archive(&swapped, &entries);
    let (_, run) = restore_into(true, &swapped);
    assert!(run.one_line_error().contains(&format!("it is the package of {IMPORTER}")), "{}", run.stderr);

    // A 2 GiB entry that no export has: refused from its header, at once.
    let (_, run) = restore_into(true, &fixture_hostile("huge-entry.tar"));
    assert!(run.one_line_error().contains("domicile-export/padding.bin"), "{}", run.stderr);
}

#[test]
fn text_an_app_or_an_archive_controls_reaches_the_terminal_escaped() {
    let (_home, archive) = exported_home();
    let hostile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture_hostile("terminal-text.json")).unwrap()).unwrap();
    let text = |k: &str| hostile[k].as_str().unwrap().to_owned();
    let mut entries = archive_entries(&archive);
    let manifest: serde_json::Value = serde_json::from_slice(entry(&mut entries, "manifest.json")).unwrap();
    let seq = manifest["sequence"].as_u64().unwrap();
    edit_jsonl(&mut entries, "app-log.jsonl", |log| {
        log.push(
            serde_json::json!({"seq": seq + 1, "at_ms": 1, "app": FOOTPRINT, "level": "info", "message": text("log")}),
        )
    });
    edit_jsonl(&mut entries, "notifications.jsonl", |n| {
        n.push(serde_json::json!({"seq": seq + 2, "at_ms": 1, "app": FOOTPRINT, "title": text("title"), "body": text("body")}))
    });
    edit_jsonl(&mut entries, "outbox.jsonl", |o| {
        o.push(serde_json::json!({"id": seq + 3, "at_ms": 1, "app": "org.example.gone", "app_version": "1.0.0",
            "destination": "http://127.0.0.1:9/elsewhere", "purpose": text("purpose"), "payload": text("payload"),
            "status": {"state": "pending"}}))
    });
    let manifest = entry(&mut entries, "manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    for (count, add) in [("app_log_entries", 1), ("notifications", 1), ("outbox", 1)] {
        m["counts"][count] = (m["counts"][count].as_u64().unwrap() + add).into();
    }
    *manifest = serde_json::to_vec(&m).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hostile_archive = dir.path().join("hostile.tar");
    write_archive(&hostile_archive, &entries);
    let (restored, run) = restore_into(true, &hostile_archive);
    assert!(run.ok, "{}", run.stderr);

    let shown: String = ["logs", "notifications", "outbox", "audit"]
        .iter()
        .map(|verb| restored.ok(&["--resident", "restored", verb]).stdout)
        .collect();
    let raw = shown
        .chars()
        .filter(|&c| {
            c.is_control() && c != '\n'
                || ('\u{2066}'..='\u{2069}').contains(&c)
                || ('\u{202a}'..='\u{202e}').contains(&c)
        })
        .count();
    assert_eq!(raw, 0, "no raw control or direction character is printed:\n{shown}");
    assert!(shown.contains("\\u{1b}[2K"), "{shown}");
    assert!(shown.contains("Survey\\u{202e}gro.ytic"), "{shown}");
    // The outbox item's real destination is on its own `to` line; the
    // purpose's fake one stays inside the `why` line.
    let outbox = restored.ok(&["--resident", "restored", "outbox"]).stdout;
    let to_lines: Vec<&str> = outbox.lines().filter(|l| l.trim_start().starts_with("to ")).collect();
    assert_eq!(to_lines, vec!["    to      http://127.0.0.1:9/elsewhere"], "{outbox}");
    // --json keeps the exact text, escaped as JSON: no raw control or
    // direction character reaches a terminal that shows the JSON either.
    let shown: String = ["logs", "notifications", "outbox", "audit"]
        .iter()
        .map(|verb| restored.ok(&["--resident", "restored", "--json", verb]).stdout)
        .collect();
    let raw = shown.chars().filter(|&c| c.is_control() && c != '\n' || ('\u{202a}'..='\u{202e}').contains(&c)).count();
    assert_eq!(raw, 0, "no raw control or direction character in the JSON:\n{shown}");
    let notes = restored.ok(&["--resident", "restored", "notifications", "--json"]).json();
    assert_eq!(notes.as_array().unwrap().last().unwrap()["title"], text("title"));
    // The approval of an item of an app that is not installed is refused.
    let id = (seq + 3).to_string();
    assert!(restored.run(&["--resident", "restored", "approve", &id]).one_line_error().contains("not installed"));
}

/// A manifest naming a doctype or a field that does not exist is refused
/// when packed, and a package made with one anyway (by another packer) is
/// refused at install: a resident is never asked to consent to nonsense.
#[test]
fn a_manifest_asking_for_an_unknown_doctype_or_field_is_refused_at_pack_and_at_install() {
    let home = TestHome::new();
    let keys = Keys::generate(&home, home.path(), "dev");
    let component = component_of(&sample_package("mobility-footprint"));
    let good = std::fs::read_to_string(repo().join("manifests/mobility-footprint.toml")).unwrap();
    let typo = good.replace("\"distance_m\"", "\"distance_km\"");
    assert_ne!(good, typo);
    let dir = tempfile::tempdir().unwrap();
    let (manifest, wasm) = (dir.path().join("manifest.toml"), dir.path().join("c.wasm"));
    std::fs::write(&manifest, &typo).unwrap();
    std::fs::write(&wasm, &component).unwrap();
    let out = dir.path().join("typo.dpkg");
    let args = ["pack", "--manifest", manifest.to_str().unwrap(), "--component", wasm.to_str().unwrap()];
    let refused = home.run(&[&args[..], &["--key", &keys.secret(), "--out", out.to_str().unwrap()]].concat());
    let err = refused.one_line_error();
    assert!(err.contains("has no field `distance_km` (did you mean `distance_m`?)"), "{err}");
    assert!(!out.exists());

    // Sealed without `domicile pack`, signed by a trusted key.
    let key = domicile_package::SecretKey::load(std::path::Path::new(&keys.secret())).unwrap();
    std::fs::write(&out, domicile_package::seal(typo.as_bytes(), &component, &key).unwrap()).unwrap();
    home.ok(&["trust", "add", &keys.public()]);
    let err = home.install(&out, &["all"]).one_line_error().to_owned();
    assert!(err.contains("did you mean `distance_m`?"), "{err}");
    assert!(home.installed_apps().is_empty());
}

/// A developer can read what each doctype holds without a home: every
/// field of every shipped schema has a meaning, and `doctype show` says it.
#[test]
fn doctypes_and_their_fields_are_described() {
    let home = TestHome::new();
    let list = home.ok(&["--json", "doctypes"]).json();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|d| d["doctype"].as_str().unwrap()).collect();
    assert!(names.contains(&"io.domicile.energy.reading") && names.len() >= 8, "{names:?}");
    for name in names {
        let schema = home.ok(&["--json", "doctype", "show", name]).json();
        for (field, spec) in schema["properties"].as_object().unwrap() {
            assert!(spec["description"].as_str().is_some_and(|d| d.len() > 10), "{name}.{field} has no meaning");
        }
    }
    let shown = home.ok(&["doctype", "show", "io.domicile.energy.reading"]).stdout;
    assert!(shown.contains("for a load curve, the end of its interval"), "{shown}");
    assert!(shown.contains("identified by: meter, kind, at"), "{shown}");
    let err = home.run(&["doctype", "show", "io.domicile.energy.readings"]).one_line_error().to_owned();
    assert!(err.contains("it knows") && err.contains("io.domicile.energy.reading,"), "{err}");
}

/// A core module (what a toolchain without a component linker emits) is
/// refused by `pack` with how to make a component, unless forced; a forced
/// one is still refused at install.
#[test]
fn pack_refuses_a_core_module_and_says_how_to_make_a_component() {
    let home = TestHome::new();
    let keys = Keys::generate(&home, home.path(), "dev");
    let dir = tempfile::tempdir().unwrap();
    let (wasm, out) = (dir.path().join("core.wasm"), dir.path().join("core.dpkg"));
    std::fs::write(&wasm, b"\0asm\x01\0\0\0").unwrap();
    let (manifest, secret) = (repo().join("manifests/mobility-footprint.toml"), keys.secret());
    let args = |force: bool| {
        let mut a = vec!["pack", "--manifest", manifest.to_str().unwrap(), "--component", wasm.to_str().unwrap()];
        a.extend(["--key", secret.as_str(), "--out", out.to_str().unwrap()]);
        if force {
            a.push("--force");
        }
        a
    };
    let refused = home.run(&args(false));
    let err = refused.one_line_error();
    assert!(err.contains("a core WebAssembly module, not a component") && err.contains("--force"), "{err}");
    assert!(!out.exists());
    home.ok(&args(true));
    home.ok(&["trust", "add", &keys.public()]);
    assert!(!home.install(&out, &["all"]).ok, "a core module never installs");
    assert!(home.installed_apps().is_empty());
}
