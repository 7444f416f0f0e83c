//! End-to-end tests of trust and consent, driving the real binary: signed
//! catalogues, key roles and revocation, updates, partial grants, the
//! hash-chained audit log, and the consent-gated outbox with a real HTTP
//! server on 127.0.0.1.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};

/// A snooper manifest: `access` and `fields` on trips, optional egress destinations.
fn snooper_manifest(version: &str, access: &str, fields: &str, egress: &[&str]) -> String {
    let mut text = format!(
        r#"manifest-version = 1
id = "org.example.test.snooper"
name = "Snooper (test)"
version = "{version}"
world = "service"
description = "Test fixture: tries every data call on a doctype and reports what the host answered."

[[permissions]]
doctype = "io.domicile.mobility.trip"
access = [{access}]
fields = [{fields}]
purpose = "Read and write trips, so the tests can check grants, revocation and projection"
"#
    );
    if !egress.is_empty() {
        let list: Vec<String> = egress.iter().map(|d| format!("\"{d}\"")).collect();
        text.push_str(&format!(
            "\n[egress]\ndestinations = [{}]\npurpose = \"Contribute anonymised figures to the city's mobility survey\"\n",
            list.join(", ")
        ));
    }
    text
}

fn snooper_component() -> Vec<u8> {
    component_of(&fixture_package("snooper"))
}

/// A catalogue directory with the given snooper versions signed by `publisher`,
/// indexed and signed by `signer`.
fn catalogue_with(home: &TestHome, dir: &Path, publisher: &Keys, versions: &[(&str, String)], signer: &Keys) {
    std::fs::create_dir_all(dir.join("packages")).unwrap();
    for (version, manifest) in versions {
        let out = dir.join(format!("packages/snooper-{version}.dpkg"));
        std::fs::remove_file(&out).ok();
        pack(home, manifest, &snooper_component(), publisher, &out);
    }
    home.ok(&["catalogue", "build", dir.to_str().unwrap(), "--key", &signer.secret(), "--name", "Test catalogue"]);
}

fn query_bodies(report: &Value) -> Vec<Value> {
    report["query"]["ok"]
        .as_array()
        .unwrap_or_else(|| panic!("query was refused: {report}"))
        .iter()
        .map(|b| serde_json::from_str(b.as_str().unwrap()).unwrap())
        .collect()
}

#[test]
fn a_catalogue_installs_only_under_a_key_trusted_for_catalogues() {
    let home = TestHome::untrusting();
    let keys = tempfile::tempdir().unwrap();
    let (publisher, signer) =
        (Keys::generate(&home, keys.path(), "publisher"), Keys::generate(&home, keys.path(), "catalogue"));
    let cat = home.path().join("cat");
    catalogue_with(
        &home,
        &cat,
        &publisher,
        &[("1.0.0", snooper_manifest("1.0.0", "\"read\"", "\"mode\"", &[]))],
        &signer,
    );

    let err = home.run(&["catalogue", "add-source", cat.to_str().unwrap()]).one_line_error().to_owned();
    assert!(err.contains(&signer.public()) && err.contains("--role catalogue"), "{err}");
    // Trusted to publish is not trusted to vouch for others.
    home.ok(&["trust", "add", &signer.public(), "--role", "publisher"]);
    assert!(!home.run(&["catalogue", "add-source", cat.to_str().unwrap()]).ok);
    home.ok(&["trust", "add", &signer.public(), "--role", "catalogue", "--name", "Test catalogue key"]);
    home.ok(&["catalogue", "add-source", cat.to_str().unwrap()]);

    let list = home.ok(&["catalogue", "list"]).stdout;
    assert!(list.contains("org.example.test.snooper  1.0.0"), "{list}");
    let show = home.ok(&["catalogue", "show", SNOOPER]).stdout;
    for expected in [
        "Read and write trips, so the tests can check grants",
        "only the fields: mode",
        &publisher.public(),
        "versions: 1.0.0",
    ] {
        assert!(show.contains(expected), "`{expected}` missing from:\n{show}");
    }
    // The publisher is not in the trust store: the catalogue vouches for it.
    home.ok(&["install", SNOOPER, "--grant", "all"]);
    assert_eq!(home.installed_apps(), vec![SNOOPER]);
    home.ok(&["put", TRIP, TRIP_DOC]);
    let report = home.ok(&["--json", "run", SNOOPER, "--input", r#"{"doctype": "io.domicile.mobility.trip"}"#]).json();
    assert_eq!(query_bodies(&report), vec![json!({"mode": "bike"})]);
    // The same package, given as a file, needs its publisher trusted.
    let direct = home.run(&["install", cat.join("packages/snooper-1.0.0.dpkg").to_str().unwrap(), "--grant", "all"]);
    assert!(
        direct.one_line_error().contains("already installed")
            || direct.one_line_error().contains("not in the trust store")
    );
}

#[test]
fn a_replaced_package_an_edited_index_or_an_untrusted_signer_installs_nothing() {
    let home = TestHome::untrusting();
    let keys = tempfile::tempdir().unwrap();
    let publisher = Keys::generate(&home, keys.path(), "publisher");
    let signer = Keys::generate(&home, keys.path(), "catalogue");
    let stranger = Keys::generate(&home, keys.path(), "stranger");
    let cat = home.path().join("cat");
    let manifest = snooper_manifest("1.0.0", "\"read\"", "\"mode\"", &[]);
    catalogue_with(&home, &cat, &publisher, &[("1.0.0", manifest.clone())], &signer);
    home.ok(&["trust", "add", &signer.public(), "--role", "catalogue"]);
    home.ok(&["catalogue", "add-source", cat.to_str().unwrap()]);

    // A package swapped for another, validly signed by the same publisher,
    // asking for more: its digest is not the one the signed index lists.
    let package = cat.join("packages/snooper-1.0.0.dpkg");
    let original = std::fs::read(&package).unwrap();
    let greedy = snooper_manifest("1.0.0", "\"read\", \"write\", \"delete\"", "\"mode\", \"start\"", &[]);
    std::fs::remove_file(&package).unwrap();
    pack(&home, &greedy, &snooper_component(), &publisher, &package);
    let err = home.run(&["install", SNOOPER, "--grant", "all"]).one_line_error().to_owned();
    assert!(err.contains("sha256 differs") && err.contains("nothing was installed"), "{err}");
    assert!(home.installed_apps().is_empty());
    std::fs::write(&package, &original).unwrap();

    // An index edited after signing: a purpose made to sound harmless.
    let index = cat.join("index.json");
    let text = std::fs::read_to_string(&index).unwrap();
    std::fs::write(&index, text.replace("\"1.0.0\"", "\"1.0.1\"")).unwrap();
    let err = home.run(&["install", SNOOPER, "--grant", "all"]).one_line_error().to_owned();
    assert!(err.contains("altered after signing"), "{err}");
    assert!(home.installed_apps().is_empty());

    // The index re-signed by a key the home does not trust.
    catalogue_with(&home, &cat, &publisher, &[], &stranger);
    let err = home.run(&["install", SNOOPER, "--grant", "all"]).one_line_error().to_owned();
    assert!(err.contains(&stranger.public()) && err.contains("does not trust for catalogues"), "{err}");
    assert!(home.installed_apps().is_empty());

    // Signed again by the trusted key: it installs.
    catalogue_with(&home, &cat, &publisher, &[], &signer);
    home.ok(&["install", SNOOPER, "--grant", "all"]);
}

#[test]
fn updates_need_the_same_publisher_a_newer_version_and_consent_to_ask_more() {
    let home = TestHome::untrusting();
    let keys = tempfile::tempdir().unwrap();
    let publisher = Keys::generate(&home, keys.path(), "publisher");
    let other = Keys::generate(&home, keys.path(), "other-publisher");
    let signer = Keys::generate(&home, keys.path(), "catalogue");
    home.ok(&["trust", "add", &signer.public(), "--role", "catalogue"]);
    // Another publisher the resident trusts fully: still not this app's publisher.
    home.ok(&["trust", "add", &other.public()]);
    let cat = home.path().join("cat");
    let v1 = snooper_manifest("1.0.0", "\"read\"", "\"mode\"", &[]);
    catalogue_with(&home, &cat, &publisher, &[("1.0.0", v1.clone())], &signer);
    home.ok(&["catalogue", "add-source", cat.to_str().unwrap()]);
    home.ok(&["install", SNOOPER, "--grant", "all"]);
    home.ok(&["put", TRIP, TRIP_DOC]);
    let input = r#"{"doctype": "io.domicile.mobility.trip"}"#;

    // 1.1.0 also wants to write trips and read their distance.
    let v11 = snooper_manifest("1.1.0", "\"read\", \"write\"", "\"mode\", \"distance_m\"", &[]);
    catalogue_with(&home, &cat, &publisher, &[("1.1.0", v11)], &signer);
    assert!(home.ok(&["apps"]).stdout.contains("update available: 1.1.0"));
    let waiting = home.ok(&["update"]).stdout;
    assert!(
        waiting.contains("asks for more than 1.0.0") && waiting.contains("write io.domicile.mobility.trip"),
        "{waiting}"
    );
    assert!(waiting.contains("read more fields of io.domicile.mobility.trip: distance_m"), "{waiting}");
    let apps = home.ok(&["--json", "apps"]).json();
    assert_eq!(apps[0]["version"], "1.0.0", "the update waits");
    let report = home.ok(&["--json", "run", SNOOPER, "--input", input]).json();
    assert_eq!(query_bodies(&report), vec![json!({"mode": "bike"})], "and the old version keeps working");
    // 1.0.0 does not declare the field: filtering on it is denied, saying where to declare it.
    let filtered = r#"{"doctype": "io.domicile.mobility.trip", "selector": {"distance_m": {"$gt": 4000}}}"#;
    let report = home.ok(&["--json", "run", SNOOPER, "--input", filtered]).json();
    let denied = report["query"]["error"].as_str().unwrap();
    assert!(denied.contains("add it to the `fields` of the manifest's permission"), "{report}");

    // Updating without granting the new asks: the old read does not silently widen.
    home.ok(&["update", SNOOPER, "--grant", "none"]);
    let apps = home.ok(&["--json", "apps"]).json();
    assert_eq!(apps[0]["version"], "1.1.0");
    let report = home.ok(&["--json", "run", SNOOPER, "--input", input]).json();
    assert_eq!(query_bodies(&report), vec![json!({"mode": "bike"})]);
    assert!(report["put"]["error"].as_str().unwrap().contains("not granted"), "{report}");

    // 1.2.0 asks nothing new: it applies directly, grants carried over.
    let v12 = snooper_manifest("1.2.0", "\"read\", \"write\"", "\"mode\", \"distance_m\"", &[]);
    catalogue_with(&home, &cat, &publisher, &[("1.2.0", v12)], &signer);
    let out = home.ok(&["update", SNOOPER]).stdout;
    assert!(out.contains("updated org.example.test.snooper from 1.1.0 to 1.2.0"), "{out}");

    // A downgrade, and the same version again, are refused.
    let old = cat.join("packages/snooper-1.0.0.dpkg");
    let err = home.run(&["update", SNOOPER, "--package", old.to_str().unwrap()]).one_line_error().to_owned();
    assert!(err.contains("downgrade is refused"), "{err}");
    let same = cat.join("packages/snooper-1.2.0.dpkg");
    assert!(home
        .run(&["update", SNOOPER, "--package", same.to_str().unwrap()])
        .one_line_error()
        .contains("is not newer"));

    // 2.0.0 signed by another trusted publisher: refused from a file and from a trusted catalogue.
    let hijack = home.path().join("hijack.dpkg");
    pack(&home, &snooper_manifest("2.0.0", "\"read\"", "\"mode\"", &[]), &snooper_component(), &other, &hijack);
    let err = home.run(&["update", SNOOPER, "--package", hijack.to_str().unwrap()]).one_line_error().to_owned();
    assert!(err.contains("publisher cannot change"), "{err}");
    let cat2 = home.path().join("cat2");
    catalogue_with(&home, &cat2, &other, &[("2.0.0", snooper_manifest("2.0.0", "\"read\"", "\"mode\"", &[]))], &signer);
    home.ok(&["catalogue", "add-source", cat2.to_str().unwrap()]);
    let err = home.run(&["update", SNOOPER]).one_line_error().to_owned();
    assert!(err.contains("publisher cannot change") && err.contains(&other.public()), "{err}");
    assert_eq!(home.ok(&["--json", "apps"]).json()[0]["version"], "1.2.0");
}

#[test]
fn revoking_a_publisher_key_holds_its_apps_until_the_resident_decides() {
    let home = TestHome::new();
    home.install(&sample_package("gpx-importer"), &["all"]);
    home.install(&sample_package("mobility-footprint"), &["all"]);
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);
    home.ok(&["run", FOOTPRINT]);
    let key = std::fs::read_to_string(repo().join("sample-apps/keys/sample-publisher.pub")).unwrap().trim().to_owned();

    let out = home.ok(&["trust", "revoke", &key]).stdout;
    assert!(out.contains(FOOTPRINT) && out.contains("on hold"), "{out}");
    let err = home.run(&["run", FOOTPRINT]).one_line_error().to_owned();
    assert!(err.contains("on hold") && err.contains("domicile enable") && err.contains("domicile uninstall"), "{err}");
    assert!(home.ok(&["trust", "list"]).stdout.contains("REVOKED"));
    assert!(home.ok(&["apps"]).stdout.contains("ON HOLD"));
    // Nothing new signed by the key installs.
    home.ok(&["uninstall", IMPORTER]);
    let err = home.install(&sample_package("gpx-importer"), &["all"]).one_line_error().to_owned();
    assert!(err.contains("revoked"), "{err}");

    // The resident decides to keep the footprint app.
    home.ok(&["enable", FOOTPRINT]);
    home.ok(&["run", FOOTPRINT]);
}

#[test]
fn a_read_can_be_granted_for_some_fields_and_grants_change_at_once() {
    let home = TestHome::untrusting();
    let keys = tempfile::tempdir().unwrap();
    let publisher = Keys::generate(&home, keys.path(), "publisher");
    home.ok(&["trust", "add", &format!("{}.pub", publisher.prefix.display())]);
    let package = home.path().join("snooper.dpkg");
    let manifest = snooper_manifest("1.0.0", "\"read\", \"write\"", "\"mode\", \"distance_m\", \"start\"", &[]);
    pack(&home, &manifest, &snooper_component(), &publisher, &package);
    let err = home.install(&package, &["io.domicile.mobility.trip:read:gps_points"]).one_line_error().to_owned();
    assert!(err.contains("`gps_points` is not one of them"), "{err}");
    home.install(&package, &["io.domicile.mobility.trip:read:mode"]);
    home.ok(&["put", TRIP, TRIP_DOC]);

    let run = |selector: &str| {
        home.ok(&[
            "run",
            SNOOPER,
            "--input",
            &format!(r#"{{"doctype": "io.domicile.mobility.trip", "selector": {selector}}}"#),
        ])
        .json()
    };
    assert_eq!(query_bodies(&run("{}")), vec![json!({"mode": "bike"})]);
    // Filtering on a field not granted would leak it: denied and audited.
    let report = run(r#"{"distance_m": {"$gt": 4000}}"#);
    let denied = report["query"]["error"].as_str().unwrap();
    assert!(denied.contains("`distance_m`"), "{report}");
    let fix = format!("they may with `domicile grant {SNOOPER} io.domicile.mobility.trip:read:distance_m`");
    assert!(denied.contains(&fix), "says how to grant it, as done next: {denied}");
    assert!(home.audit().iter().any(|e| e["outcome"] == "denied" && e["operation"] == "query"));

    home.ok(&["grant", SNOOPER, "io.domicile.mobility.trip:read:distance_m"]);
    assert_eq!(
        query_bodies(&run(r#"{"distance_m": {"$gt": 4000}}"#)),
        vec![json!({"mode": "bike", "distance_m": 4200})]
    );
    home.ok(&["revoke", SNOOPER, "io.domicile.mobility.trip:read:mode"]);
    assert_eq!(query_bodies(&run("{}")), vec![json!({"distance_m": 4200})]);
    let apps = home.ok(&["--json", "apps"]).json();
    assert_eq!(apps[0]["grants"][TRIP], json!({"access": ["read"], "fields": ["distance_m"]}));
}

/// Opens the home's sled store directly, as an attacker with file access.
fn with_audit_tree(home: &TestHome, f: impl FnOnce(&sled::Tree)) {
    // With the segment size the space was made with (sled refuses another).
    let db = domicile_store::space_config(&home.path().join("spaces/residents/me")).open().unwrap();
    let tree = db.open_tree("audit").unwrap();
    f(&tree);
    db.flush().unwrap();
}

#[test]
fn audit_verify_detects_an_edited_deleted_or_reordered_entry() {
    let home = TestHome::new();
    home.install(&fixture_package("snooper"), &["all"]);
    home.ok(&["put", TRIP, TRIP_DOC]);
    for _ in 0..3 {
        home.ok(&["run", SNOOPER, "--input", r#"{"doctype": "io.domicile.mobility.trip"}"#]);
    }
    let out = home.ok(&["audit", "verify"]).stdout;
    assert!(out.contains("intact"), "{out}");
    let summary = home.ok(&["audit", "--summary"]).stdout;
    assert!(summary.contains("org.example.test.snooper read 3 io.domicile.mobility.trip document(s)"), "{summary}");
    assert!(home.ok(&["--json", "audit", "--since", "2030-01-01"]).json().as_array().unwrap().is_empty());
    assert!(!home.ok(&["--json", "audit", "--since", "2026-03-05"]).json().as_array().unwrap().is_empty());

    // Edited: a read made to look like it returned something else.
    let key = 2u64.to_be_bytes();
    let mut original = Vec::new();
    with_audit_tree(&home, |t| {
        original = t.get(key).unwrap().unwrap().to_vec();
        let mut entry: Value = serde_json::from_slice(&original).unwrap();
        entry["documents"] = json!(999);
        t.insert(key, serde_json::to_vec(&entry).unwrap()).unwrap();
    });
    let err = home.run(&["audit", "verify"]).one_line_error().to_owned();
    assert!(err.contains("entry 2 does not match its hash"), "{err}");
    with_audit_tree(&home, |t| {
        t.insert(key, original.clone()).unwrap();
    });
    home.ok(&["audit", "verify"]);

    // Deleted.
    with_audit_tree(&home, |t| {
        t.remove(key).unwrap();
    });
    assert!(home.run(&["audit", "verify"]).one_line_error().contains("deleted"));
    with_audit_tree(&home, |t| {
        t.insert(key, original.clone()).unwrap();
    });

    // Reordered: two entries swap places.
    with_audit_tree(&home, |t| {
        let (a, b) = (t.get(3u64.to_be_bytes()).unwrap().unwrap(), t.get(4u64.to_be_bytes()).unwrap().unwrap());
        t.insert(3u64.to_be_bytes(), b).unwrap();
        t.insert(4u64.to_be_bytes(), a).unwrap();
    });
    assert!(!home.run(&["audit", "verify"]).ok);
}

fn outbox(home: &TestHome) -> Vec<Value> {
    home.ok(&["--json", "outbox"]).json().as_array().unwrap().clone()
}

fn install_courier(home: &TestHome, destinations: &[&str]) -> PathBuf {
    let keys = tempfile::tempdir().unwrap();
    let publisher = Keys::generate(home, keys.path(), "publisher");
    home.ok(&["trust", "add", &publisher.public()]);
    let package = home.path().join("courier.dpkg");
    pack(
        home,
        &snooper_manifest("1.0.0", "\"read\"", "\"mode\"", destinations),
        &snooper_component(),
        &publisher,
        &package,
    );
    home.install(&package, &["all"]);
    package
}

fn egress_input(destination: &str, payload: Value) -> String {
    json!({ "egress": { "destination": destination, "payload": payload, "purpose": "Contribute to the city's mobility survey" } })
        .to_string()
}

#[test]
fn egress_waits_in_the_outbox_and_exactly_the_shown_payload_is_sent_on_approval() {
    let server = http_receiver();
    let survey = format!("http://127.0.0.1:{}/survey", server.port);
    let home = TestHome::untrusting();
    install_courier(&home, &[&survey, "http://127.0.0.1:1/closed"]);

    let payload = json!({ "week": "2026-W10", "trips_per_mode": { "bike": 3, "tram": 2 } });
    let report = home.ok(&["--json", "run", SNOOPER, "--input", &egress_input(&survey, payload.clone())]).json();
    let id = report["egress"]["ok"].as_str().unwrap_or_else(|| panic!("{report}")).to_owned();
    let items = outbox(&home);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"]["state"], "pending");
    assert_eq!(serde_json::from_str::<Value>(items[0]["payload"].as_str().unwrap()).unwrap(), payload);
    let shown = home.ok(&["outbox"]).stdout;
    let stored_payload = items[0]["payload"].as_str().unwrap().to_owned();
    assert!(shown.contains(&stored_payload) && shown.contains("PENDING"), "{shown}");
    assert!(server.received.try_recv().is_err(), "nothing leaves before the resident approves");

    // An undeclared destination is denied to the app, audited, and never queued.
    let report = home
        .ok(&[
            "run",
            SNOOPER,
            "--input",
            &egress_input(&format!("http://127.0.0.1:{}/elsewhere", server.port), json!({"x": 1})),
        ])
        .json();
    let denied = report["egress"]["error"].as_str().unwrap();
    assert!(
        denied.starts_with("denied") && denied.contains("add it to `destinations` in the manifest's `[egress]`"),
        "{report}"
    );
    assert_eq!(outbox(&home).len(), 1);
    assert!(home.audit().iter().any(|e| e["operation"] == "egress" && e["outcome"] == "denied"));

    let out = home.ok(&["approve", &id]).stdout;
    assert!(out.contains("HTTP 200"), "{out}");
    let (request, content_type, body) = server.received.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
    assert_eq!(request, "POST /survey");
    assert_eq!(content_type, "application/json");
    assert_eq!(body, stored_payload.as_bytes(), "exactly the payload the resident was shown");
    assert_eq!(outbox(&home)[0]["status"]["state"], "sent");
    assert!(home.run(&["approve", &id]).one_line_error().contains("already sent"));

    // Denied: never sent, and cannot be approved afterwards.
    let report =
        home.ok(&["--json", "run", SNOOPER, "--input", &egress_input(&survey, json!({"second": true}))]).json();
    let second = report["egress"]["ok"].as_str().unwrap().to_owned();
    home.ok(&["deny", &second]);
    assert!(home.run(&["approve", &second]).one_line_error().contains("already denied"));
    assert!(server.received.try_recv().is_err());

    // Delivery to a closed port fails cleanly; the item can be approved again.
    let report = home
        .ok(&["--json", "run", SNOOPER, "--input", &egress_input("http://127.0.0.1:1/closed", json!({"third": 3}))])
        .json();
    let third = report["egress"]["ok"].as_str().unwrap().to_owned();
    assert!(home.run(&["approve", &third]).one_line_error().contains("could not deliver"));
    assert_eq!(outbox(&home)[2]["status"]["state"], "failed");

    let audit = home.audit();
    let sends: Vec<&Value> = audit.iter().filter(|e| e["operation"] == "send").collect();
    assert_eq!(sends.len(), 3, "approved, denied and failed decisions are all in the audit log");
    home.ok(&["audit", "verify"]);
}

#[test]
fn notifications_are_kept_for_the_resident_and_bounded() {
    let home = TestHome::new();
    home.install(&fixture_package("snooper"), &["all"]);
    let input = json!({ "notify": { "title": "Your weekly report", "body": "3 bike trips this week" } }).to_string();
    home.ok(&["run", SNOOPER, "--input", &input]);
    let long = json!({ "notify": { "title": "x".repeat(500), "body": "" } }).to_string();
    let report = home.ok(&["--json", "run", SNOOPER, "--input", &long]).json();
    assert!(report["notify"]["error"].as_str().unwrap().starts_with("invalid"), "{report}");
    let listed = home.ok(&["notifications"]).stdout;
    assert!(
        listed.contains("org.example.test.snooper: Your weekly report") && listed.contains("3 bike trips"),
        "{listed}"
    );
    assert_eq!(home.ok(&["--json", "notifications"]).json().as_array().unwrap().len(), 1);
}

#[test]
fn the_sample_catalogue_verifies_and_serves_the_sample_apps() {
    let home = TestHome::untrusting();
    let key = repo().join("sample-apps/keys/sample-publisher.pub");
    home.ok(&["trust", "add", key.to_str().unwrap(), "--role", "catalogue"]);
    home.ok(&["catalogue", "add-source", sample_catalogue().to_str().unwrap()]);
    home.ok(&["install", IMPORTER, "--grant", "all"]);
    home.ok(&["install", FOOTPRINT, "--grant", "all"]);
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);
    let report = home.ok(&["--json", "run", FOOTPRINT]).json();
    assert!(report["total_km"].as_f64().unwrap() > 0.0, "{report}");
}
