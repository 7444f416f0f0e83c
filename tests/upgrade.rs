//! A home made by domicile 0.1 (`tests/fixtures/homes/v0.1.0`, one sled
//! database for every resident) opens with this version and is upgraded in
//! place to a database per resident, with nothing lost: each resident's
//! export holds exactly what 0.1 exported (documents, provenance, audit
//! chain, apps and packages, grants, outbox), the audit heads are the same,
//! the accounts file is untouched, and the apps still run. An upgrade killed
//! with SIGKILL midway resumes at the next command.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixture() -> std::path::PathBuf {
    repo().join("tests/fixtures/homes/v0.1.0")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/homes/v0.1.0.expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A copy of the 0.1 home (never the fixture itself: the upgrade rewrites it).
fn old_home() -> TestHome {
    let home = TestHome { dir: tempfile::tempdir().unwrap() };
    copy_dir(&fixture(), home.path());
    home
}

/// Everything 0.1 said about the home, said again by this version.
fn assert_nothing_lost(home: &TestHome) {
    let expected = expected();
    assert!(!home.path().join("store").exists(), "the single database is gone once upgraded");
    let residents = home.ok(&["--json", "resident", "list"]).json();
    let names: Vec<&str> = residents.as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(names, ["ada", "me"]);
    for name in names {
        let want = &expected["residents"][name];
        let archive = home.path().join(format!("{name}.tar"));
        home.ok(&["--resident", name, "export", "--out", archive.to_str().unwrap()]);
        let mut tar = tar::Archive::new(std::fs::File::open(&archive).unwrap());
        let (mut seen, mut schemas) = (0, 0);
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let part = path.strip_prefix("domicile-export/").unwrap().to_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            if part == "manifest.json" {
                let mut manifest: Value = serde_json::from_slice(&bytes).unwrap();
                manifest.as_object_mut().unwrap().remove("exported_at_ms");
                assert_eq!(manifest, want["export_manifest"], "{name}'s export manifest");
            } else if let Some(schema) = part.strip_prefix("schemas/") {
                // The doctypes' schemas are this runtime's, not the
                // resident's data: they are the ones it ships now.
                let shipped = std::fs::read(repo().join("manifests/doctypes").join(schema)).unwrap();
                assert!(bytes == shipped, "{name}'s {part} is the schema this version ships");
                schemas += 1;
            } else {
                let digest = hex::encode(Sha256::digest(&bytes));
                assert_eq!(digest, want["export_entries_sha256"][&part], "{name}'s {part} is what 0.1 exported");
                seen += 1;
            }
        }
        let data_entries =
            want["export_entries_sha256"].as_object().unwrap().keys().filter(|k| !k.starts_with("schemas/"));
        assert_eq!(seen, data_entries.count(), "{name}: no file missing");
        // Every schema this version ships (it may ship more doctypes than 0.1 did).
        assert_eq!(schemas, std::fs::read_dir(repo().join("manifests/doctypes")).unwrap().count(), "{name}'s schemas");
        let verify = home.ok(&["--json", "--resident", name, "audit", "verify"]).json();
        assert_eq!(verify, want["audit_verify"], "{name}'s audit chain and head");
        let check = home.ok(&["--json", "--resident", name, "check"]).json();
        assert!(check["problems"].as_array().unwrap().is_empty(), "{name}: {check}");
    }
    let accounts = std::fs::read(home.path().join("accounts.json")).unwrap();
    assert_eq!(accounts, std::fs::read(fixture().join("accounts.json")).unwrap(), "accounts untouched");
    // The apps run on the upgraded spaces (their compiled form is rebuilt
    // from the stored, re-verified packages).
    let footprint = home.ok(&["--json", "--resident", "ada", "run", FOOTPRINT]).json();
    assert_eq!(footprint["total_km"], 5.107, "{footprint}");
    let insights = home.ok(&["--json", "--resident", "me", "run", "io.domicile.sample.energy-insights"]).json();
    assert!(insights.to_string().contains("kwh"), "{insights}");
    // And new writes land (the sequence carries on).
    home.ok(&["--resident", "ada", "put", TRIP, r#"{"start":"2026-04-02T08:00:00Z","end":"2026-04-02T08:20:00Z","date":"2026-04-02","month":"2026-04","distance_m":4000,"duration_s":1200,"mode":"bike"}"#]);
}

#[test]
fn a_home_of_domicile_0_1_is_upgraded_in_place_with_nothing_lost() {
    let home = old_home();
    let first = home.ok(&["resident", "list"]);
    assert!(first.stderr.contains("upgraded: 2 resident(s) moved"), "{}", first.stderr);
    assert!(home.path().join("spaces/residents/me/conf").is_file());
    assert_nothing_lost(&home);
    // Opened again: nothing more to upgrade, nothing said.
    let again = home.ok(&["resident", "list"]);
    assert!(again.stderr.is_empty(), "{}", again.stderr);
}

/// Starts the upgrade and kills it with SIGKILL once it says it is moving
/// resident `at` (of 2). The residents' copies take milliseconds each (the
/// second, the demo's, is the big one), far longer than a kill takes.
fn kill_upgrade_at(home: &TestHome, at: usize) {
    let mut child = home
        .command(&["resident", "list"])
        .env("DOMICILE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mark = format!("moving resident {at} of 2");
    let mut said = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let reached = line.contains(&mark);
        said.push(line);
        if reached {
            child.kill().unwrap();
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed before it finished: {said:?}");
}

#[test]
fn an_upgrade_killed_midway_resumes_at_the_next_command_with_nothing_lost() {
    let home = old_home();
    // Killed while moving the first resident: the old database intact.
    kill_upgrade_at(&home, 1);
    assert!(home.path().join("store/db").is_file(), "the old database is kept until the end");
    // Killed while moving the second: the first is moved (whether the
    // second got published before the kill landed is timing; either way
    // the checks below find it whole).
    kill_upgrade_at(&home, 2);
    assert!(home.path().join("store/db").is_file());
    assert!(home.path().join("spaces/residents/ada/conf").is_file(), "ada was wholly moved");
    // The next command finishes the upgrade.
    let resumed = home.ok(&["resident", "list"]);
    assert!(resumed.stderr.contains("finishing an upgrade that was interrupted"), "{}", resumed.stderr);
    assert!(home.path().join("spaces/incoming").read_dir().unwrap().next().is_none(), "no leftover");
    assert_nothing_lost(&home);
}

/// A home the version before trigger wakes and small sled segments left
/// (the node home of `tests/fixtures/clusters/f4d8a3d`, its spaces made
/// with sled's 512 KiB segments): it opens with each space's own segment
/// size, alice's trips all there, and every resident is marked once for a
/// look at their triggers (a start used to look at everyone); a resident
/// made now gets the small segments.
#[test]
fn a_home_of_the_version_before_wakes_opens_with_every_resident_marked() {
    let home = TestHome { dir: tempfile::tempdir().unwrap() };
    copy_dir(&repo().join("tests/fixtures/clusters/f4d8a3d/n1"), home.path());
    let spaces = home.path().join("spaces");
    assert!(!spaces.join("wakes").exists(), "the previous version kept no wakes");
    let trips = home.ok(&["--resident", "alice", "--json", "docs", "io.domicile.mobility.trip"]).json();
    let ids: Vec<&str> = trips.as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["old1", "old2", "old3"]);
    for name in ["alice", "me"] {
        assert_eq!(std::fs::read_to_string(spaces.join("wakes").join(name)).unwrap(), "", "{name} is marked");
    }
    let segment = |name: &str| {
        let conf = std::fs::read(spaces.join("residents").join(name).join("conf")).unwrap();
        String::from_utf8_lossy(&conf).lines().find(|l| l.starts_with("segment_size")).unwrap().to_owned()
    };
    assert_eq!(segment("alice"), "segment_size: 524288");
    home.ok(&["resident", "add", "newcomer"]);
    assert_eq!(segment("newcomer"), "segment_size: 65536");
}
