//! Hostile and broken components and manifests: each fails with a clear
//! error, and the runtime carries on serving the next app.

mod common;

use common::*;

fn home_with_everything() -> TestHome {
    let home = TestHome::new();
    for p in ["gpx-importer", "mobility-footprint"] {
        assert!(home.install(&sample_package(p), &["all"]).ok);
    }
    for p in ["cpu-hog", "memory-hog", "snooper"] {
        assert!(home.install(&fixture_package(p), &["all"]).ok);
    }
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);
    home
}

#[test]
fn an_endless_loop_is_stopped_by_the_cpu_limit_and_the_next_app_runs() {
    let home = home_with_everything();
    let err = home.run(&["run", "org.example.test.cpu-hog"]).one_line_error().to_owned();
    assert!(err.contains("exceeded its CPU time limit (300 ms)"), "{err}");
    let report = home.ok(&["--json", "run", FOOTPRINT]).json();
    assert!(report["total_km"].as_f64().unwrap() > 0.0);
}

#[test]
fn unbounded_memory_growth_is_stopped_at_the_memory_limit_and_the_next_app_runs() {
    let home = home_with_everything();
    let err = home.run(&["run", "org.example.test.memory-hog"]).one_line_error().to_owned();
    assert!(err.contains("exceeded its memory limit (16 MiB)"), "{err}");
    assert!(home.ok(&["--json", "run", FOOTPRINT]).json()["total_km"].as_f64().unwrap() > 0.0);
}

#[test]
fn the_operator_caps_what_a_manifest_asks_for() {
    let home = home_with_everything();
    // The cpu-hog asks for 300 ms; the operator allows 100 ms at most.
    std::fs::write(home.path().join("config.toml"), "[limits]\nmax-cpu-ms = 100\nmax-memory-mib = 8\n").unwrap();
    assert!(home.run(&["run", "org.example.test.cpu-hog"]).one_line_error().contains("CPU time limit (100 ms)"));
    assert!(home.run(&["run", "org.example.test.memory-hog"]).one_line_error().contains("memory limit (8 MiB)"));
    std::fs::write(home.path().join("config.toml"), "[limits]\nmax-cpu = 1\n").unwrap();
    assert!(home.run(&["run", FOOTPRINT]).one_line_error().contains("config.toml"));
}

#[test]
fn a_corrupted_compile_cache_is_rebuilt_from_the_verified_package() {
    let home = TestHome::new();
    // Its own cache, not the suite's shared one.
    let cache = home.path().join("own-cache");
    std::fs::write(home.path().join("config.toml"), format!("[engine]\nartifact-cache = {:?}\n", cache)).unwrap();
    for p in ["gpx-importer", "mobility-footprint"] {
        assert!(home.install(&sample_package(p), &["all"]).ok);
    }
    for p in ["cpu-hog", "memory-hog", "snooper"] {
        assert!(home.install(&fixture_package(p), &["all"]).ok);
    }
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);
    let mut corrupted = 0;
    for entry in std::fs::read_dir(&cache).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            let mut bytes = std::fs::read(&path).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
            corrupted += 1;
        }
    }
    assert!(corrupted >= 5);
    let run = home.ok(&["--json", "run", FOOTPRINT]);
    assert!(run.json()["total_km"].as_f64().unwrap() > 0.0);
    assert!(run.stderr.contains("cached artifact is corrupt; recompiling"), "{}", run.stderr);
    // The rebuilt artifact is intact: the next run loads it silently.
    let run = home.ok(&["run", FOOTPRINT]);
    assert!(!run.stderr.contains("corrupt"), "{}", run.stderr);
    // Removing the cache entirely works too.
    std::fs::remove_dir_all(&cache).unwrap();
    assert!(home.ok(&["--json", "run", FOOTPRINT]).json()["total_km"].as_f64().unwrap() > 0.0);
    // A cache that cannot be written only costs time: the app still runs.
    std::fs::remove_dir_all(&cache).unwrap();
    std::fs::write(&cache, b"a file where the cache directory should be").unwrap();
    let run = home.ok(&["--json", "run", FOOTPRINT]);
    assert!(run.json()["total_km"].as_f64().unwrap() > 0.0);
    assert!(run.stderr.contains("could not keep the compiled app in the artifact cache"), "{}", run.stderr);
}

fn pack_with_manifest(home: &TestHome, manifest: &str) -> (bool, String) {
    let dir = home.path().join("pack");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest_path = dir.join("manifest.toml");
    std::fs::write(&manifest_path, manifest).unwrap();
    let component = dir.join("c.wasm");
    std::fs::write(&component, b"\0asm\x0d\0\x01\0").unwrap();
    let out = dir.join("out.dpkg");
    let _ = std::fs::remove_file(&out);
    let run = home.run(&[
        "pack",
        "--manifest",
        manifest_path.to_str().unwrap(),
        "--component",
        component.to_str().unwrap(),
        "--key",
        repo().join("sample-apps/keys/sample-publisher.key").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    (run.ok, run.stderr)
}

/// The `version` a manifest's text declares.
fn version_of(manifest: &str) -> &str {
    manifest.lines().find_map(|l| l.strip_prefix("version = \"")?.strip_suffix('"')).expect("a version line")
}

#[test]
fn malformed_manifests_are_rejected_naming_the_field() {
    let home = TestHome::new();
    let good = std::fs::read_to_string(repo().join("manifests/mobility-footprint.toml")).unwrap();
    assert!(pack_with_manifest(&home, &good).0);
    let cases = [
        (good.replace("world = \"service\"", "world = \"service\"\nnetwork = \"yes\""), "unknown field `network`"),
        (good.replace("purpose = \"Add up", "# purpose = \"Add up"), "missing field `purpose`"),
        (good.replace("io.domicile.sample.mobility-footprint", "Mobility Footprint"), "invalid app id"),
        (good.replace("io.domicile.mobility.trip", "trip"), "invalid doctype"),
        (good.replace("access = [\"read\"]", "access = [\"read\", \"sudo\"]"), "sudo"),
        (good.replacen(&format!("version = \"{}\"", version_of(&good)), "version = \"latest\"", 1), "line 4"),
        (good.replace("cpu-ms = 2000", "cpu-ms = -5"), "cpu-ms"),
        ("this is not toml".to_owned(), "invalid manifest"),
    ];
    for (manifest, expected) in cases {
        let (ok, stderr) = pack_with_manifest(&home, &manifest);
        assert!(!ok, "accepted a bad manifest expecting {expected}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "expected `{expected}` in: {stderr}");
    }
}

#[test]
fn hostile_runs_interleaved_with_good_ones_never_leave_the_home_unusable() {
    let home = home_with_everything();
    for _ in 0..3 {
        assert!(!home.run(&["run", "org.example.test.cpu-hog"]).ok);
        assert!(!home.run(&["run", "org.example.test.memory-hog"]).ok);
        assert!(home.run(&["run", FOOTPRINT]).ok);
    }
    let denied_or_failed = home.audit().iter().filter(|e| e["outcome"] == "denied").count();
    assert_eq!(denied_or_failed, 0, "the hogs touch no data");
}

#[test]
fn wasi_is_deny_by_default_and_files_exist_only_in_the_declared_scratch_dir() {
    let home = TestHome::new();
    assert!(home.install(&fixture_package("wasi-guest"), &["all"]).ok);
    // A symbolic link planted in the scratch directory must not lead out of it.
    let scratch = home.path().join("scratch/me/org.example.test.wasi-guest");
    std::fs::create_dir_all(&scratch).unwrap();
    std::os::unix::fs::symlink("/etc", scratch.join("outside")).unwrap();

    let report = home.ok(&["--json", "run", "org.example.test.wasi-guest"]).json();
    assert_eq!(report["env"], 0, "no environment variables: {report}");
    assert_eq!(report["args"], 0, "{report}");
    assert_eq!(report["preopens"], serde_json::json!(["/scratch"]), "{report}");
    assert_eq!(report["random_bytes"], 16, "{report}");
    // WASI's wall clock is domicile's clock (fixed by DOMICILE_CLOCK in tests).
    assert_eq!(report["wall_clock_s"], 1_772_704_800, "{report}");
    assert_eq!(report["read_back"], "written in the sandbox", "{report}");
    assert_eq!(std::fs::read_to_string(scratch.join("note.txt")).unwrap(), "written in the sandbox");
    for escape in ["dotdot", "absolute", "symlink"] {
        assert!(report[escape]["refused"].is_string(), "{escape} escaped the scratch dir: {report}");
    }

    // stdout and stderr go to the app's log, not to the terminal.
    let logs = home.ok(&["--json", "logs", "--app", "org.example.test.wasi-guest"]).stdout;
    let lines: Vec<serde_json::Value> = logs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let said: Vec<(&str, &str)> =
        lines.iter().map(|l| (l["level"].as_str().unwrap(), l["message"].as_str().unwrap())).collect();
    assert_eq!(said, vec![("stdout", "hello from stdout"), ("stderr", "hello from stderr")]);

    // Scratch directories are per resident.
    home.ok(&["resident", "add", "alice"]);
    home.ok(&["--resident", "alice", "install", fixture_package("wasi-guest").to_str().unwrap(), "--grant", "all"]);
    home.ok(&["--resident", "alice", "run", "org.example.test.wasi-guest"]);
    assert!(home.path().join("scratch/alice/org.example.test.wasi-guest/note.txt").is_file());
    assert!(!home.path().join("scratch/alice/org.example.test.wasi-guest/outside").exists());
}

#[test]
fn standard_wasi_imports_install_and_give_nothing_while_foreign_imports_are_refused() {
    let home = TestHome::new();
    // Sockets are linked, so the component installs; creating one fails inside the app.
    assert!(home.install(&fixture_package("net-guest"), &["all"]).ok);
    let report = home.ok(&["--json", "run", "org.example.test.net-guest"]).json();
    assert_eq!(report["socket"], false, "{report}");
    // The filesystem without [scratch]: no directory is preopened at all.
    assert!(home.install(&fixture_package("wasi-guest-no-scratch"), &["all"]).ok);
    let report = home.ok(&["--json", "run", "org.example.test.wasi-guest-no-scratch"]).json();
    assert_eq!(report["preopens"], serde_json::json!([]), "{report}");
    assert!(report.get("read_back").is_none(), "nothing to write in: {report}");
    assert!(!home.path().join("scratch/me/org.example.test.wasi-guest-no-scratch").exists());

    // An interface that is neither WASI nor domicile's is refused by name.
    let err = home.install(&fixture_package("foreign-guest"), &["all"]).one_line_error().to_owned();
    assert!(err.contains("example:exfil/upload@0.1.0"), "{err}");
    assert!(err.contains("does not offer"), "{err}");
    assert!(!home.installed_apps().contains(&"org.example.test.foreign-guest".to_owned()));
}

/// Runs one attack of the hostile guest; returns its one-line error.
fn attack(home: &TestHome, name: &str) -> String {
    let run = home.run(&["run", "org.example.test.hostile", "--input", &format!(r#"{{"attack": "{name}"}}"#)]);
    run.one_line_error().to_owned()
}

#[test]
fn each_hostile_behaviour_ends_its_run_with_the_right_error_and_the_next_app_runs() {
    let home = home_with_everything();
    assert!(home.install(&fixture_package("hostile"), &["all"]).ok);
    let expected = [
        ("spin", "exceeded its wall-clock time limit (1500 ms)"),
        ("recursion", "crashed: stack overflow"),
        ("host-call-flood", "exceeded its host calls limit (10000 calls)"),
        ("document-flood", "exceeded its documents read limit (50 documents)"),
        ("huge-output", "exceeded its output size limit (64 KiB; it returned 4096 KiB)"),
        ("stale-cursor", "crashed: unknown handle index"),
        // The SDK logs a panic's message and place; the crash quotes it.
        (
            "panic",
            "crashed: it hit `unreachable` (a panic or abort in the app); it wrote 1 line(s) to its log before, \
             the last error: panic at test-guests/hostile/src/lib.rs:",
        ),
        ("panic", ": the hostile guest panics on purpose; see `domicile logs --app org.example.test.hostile`"),
        // Views domicile will not draw fail the run, saying where and why.
        ("view-script", "failed: its view is not valid at view[1].text: it contains markup"),
        ("view-link", "failed: its view is not valid at view[0].text: it contains a link"),
        ("view-huge", "failed: its view is not valid at view[0].chart.x: 5000 x labels; a chart has 1 to 400"),
        ("view-deep", "failed: its output is not JSON (recursion limit exceeded"),
    ];
    for (name, message) in expected {
        let err = attack(&home, name);
        assert!(err.contains(message), "{name}: {err}");
        // The runtime carries on: a well-behaved app runs right after.
        assert!(home.ok(&["--json", "run", FOOTPRINT]).json()["total_km"].as_f64().unwrap() > 0.0, "after {name}");
    }
    // A flood of log lines is cut, not stored whole, and the run succeeds
    // (the lines before it are the panics' messages).
    let logged_before = home.ok(&["--json", "logs", "--app", "org.example.test.hostile"]).stdout.lines().count();
    home.ok(&["run", "org.example.test.hostile", "--input", r#"{"attack": "huge-log"}"#]);
    let logs = home.ok(&["--json", "logs", "--app", "org.example.test.hostile"]).stdout;
    let lines: Vec<&str> = logs.lines().skip(logged_before).collect();
    assert!(lines.len() <= 1001, "{} log lines kept", lines.len());
    assert!(lines.last().unwrap().contains("more log lines were dropped"));
    assert!(lines.iter().all(|l| l.len() < 5000), "long lines are cut");
}

#[test]
fn a_component_that_is_not_valid_webassembly_is_refused_at_install() {
    let home = TestHome::new();
    let keys = tempfile::tempdir().unwrap();
    let publisher = Keys::generate(&home, keys.path(), "publisher");
    home.ok(&["trust", "add", &publisher.public()]);
    let manifest = std::fs::read_to_string(repo().join("tests/fixtures/manifests/cpu-hog.toml")).unwrap();
    let package = home.path().join("garbage.dpkg");
    pack(&home, &manifest, b"\0asm\x0d\0\x01\0 this is not a component at all", &publisher, &package);
    let err = home.install(&package, &["all"]).one_line_error().to_owned();
    assert!(err.contains("not a valid WebAssembly component"), "{err}");
    assert!(home.installed_apps().is_empty());
}
