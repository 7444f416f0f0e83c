//! Apps in Python and JavaScript, built from source with the real
//! toolchains (componentize-py, componentize-js) by
//! `sample-apps/componentize.sh`:
//! - the sample apps built from source compute exactly what their
//!   committed packages compute (their toolchains are not byte-reproducible,
//!   so this is what can be checked);
//! - hostile guests try every way out through the standard WASI interfaces
//!   their toolchains import: each attempt fails inside the app, nothing
//!   reaches the host, and the resident's data is untouched.
//!
//! A missing toolchain skips these tests with a message, except under CI,
//! where `.ci/run` installs both and a missing one fails.

mod common;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
enum Lang {
    Python,
    Js,
}

impl Lang {
    fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    /// Whether the toolchain is installed; under CI its absence is a failure.
    fn available(self) -> bool {
        let present = match self {
            Lang::Python => Command::new("componentize-py").arg("--version").output().is_ok_and(|o| o.status.success()),
            Lang::Js => repo().join("sample-apps/node_modules/.bin/componentize-js").is_file(),
        };
        let install = match self {
            Lang::Python => "pip install componentize-py==0.25.1",
            Lang::Js => "(cd sample-apps && npm ci)",
        };
        if !present && std::env::var_os("CI").is_some() {
            panic!("CI must have the {} toolchain: {install}", self.name());
        }
        if !present {
            eprintln!("skipped: the {} toolchain is not installed ({install})", self.name());
        }
        present
    }

    /// Builds the app in `source` (a folder of the repository) into a component.
    fn build(self, source: &str, out_dir: &Path) -> Vec<u8> {
        let out = out_dir.join(format!("{}.wasm", source.replace('/', "-")));
        let status = Command::new(repo().join("sample-apps/componentize.sh"))
            .args([self.name(), repo().join(source).to_str().unwrap(), "service", out.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success(), "componentize.sh {} {source} failed", self.name());
        std::fs::read(out).unwrap()
    }
}

/// A home with the sample key and a developer key trusted.
fn home_with_dev_key() -> (TestHome, Keys, tempfile::TempDir) {
    let home = TestHome::new();
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate(&home, keys_dir.path(), "dev");
    home.ok(&["trust", "add", &format!("{}.pub", keys.prefix.display()), "--name", "dev"]);
    (home, keys, keys_dir)
}

fn manifest(app: &str) -> String {
    std::fs::read_to_string(repo().join("manifests").join(format!("{app}.toml"))).unwrap()
}

fn import_sample_data(home: &TestHome) {
    for (importer, file) in [
        ("energy-importer", "enedis-load-curve-2026-03.csv"),
        ("bank-importer", "bank-2026-02.ofx"),
        ("bank-importer", "bank-2026-03.csv"),
    ] {
        home.ok(&["import", &format!("io.domicile.sample.{importer}"), sample_data(file).to_str().unwrap()]);
    }
}

#[test]
fn python_and_javascript_sample_apps_built_from_source_compute_what_their_packages_compute() {
    let langs = [(Lang::Python, "tariff-check"), (Lang::Js, "recurring-payments")];
    if !langs.iter().all(|(lang, _)| lang.available()) {
        return;
    }
    let (home, keys, scratch) = home_with_dev_key();
    for importer in ["energy-importer", "bank-importer"] {
        home.install(&sample_package(importer), &["all"]);
    }
    import_sample_data(&home);
    for (lang, app) in langs {
        let id = format!("io.domicile.sample.{app}");
        let package = sample_package(app);
        assert!(home.install(&package, &["all"]).ok);
        let committed: Value = home.ok(&["run", &id]).json();
        home.ok(&["uninstall", &id]);

        let component = lang.build(&format!("sample-apps/{app}"), scratch.path());
        assert_eq!(&component[4..8], &[0x0d, 0x00, 0x01, 0x00], "{app}: a component, not a core module");
        let rebuilt = scratch.path().join(format!("{app}.dpkg"));
        pack(&home, &manifest(app), &component, &keys, &rebuilt);
        assert!(home.install(&rebuilt, &["all"]).ok);
        let fresh: Value = home.ok(&["run", &id]).json();
        assert_eq!(fresh, committed, "{app} built from source computes something else than its package: bump its version and rebuild (sample-apps/build.sh)");
        home.ok(&["uninstall", &id]);
    }
}

/// Nothing connected to the listener.
fn assert_no_connection(listener: &TcpListener) {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("a guest reached the host's listener: {other:?}"),
    }
}

fn everything_of(home: &TestHome) -> Vec<Value> {
    ["io.domicile.energy.reading", "io.domicile.bank.operation"].iter().flat_map(|d| home.docs(d)).collect()
}

fn run_hostile(home: &TestHome, id: &str, input: &Value) -> Value {
    let output = home
        .command(&["run", id, "--input", &input.to_string()])
        .env("DOMICILE_TEST_SECRET", "the guest must not see this")
        .output()
        .unwrap();
    assert!(output.status.success(), "{id}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn refused(report: &Value, attack: &str) -> String {
    match report[attack]["refused"].as_str() {
        Some(why) => why.to_owned(),
        None => panic!("`{attack}` was not refused: {report}"),
    }
}

#[test]
fn hostile_python_and_javascript_guests_get_errors_inside_the_app_and_reach_nothing() {
    if !(Lang::Python.available() && Lang::Js.available()) {
        return;
    }
    let (home, keys, scratch) = home_with_dev_key();
    for importer in ["energy-importer", "bank-importer"] {
        home.install(&sample_package(importer), &["all"]);
    }
    import_sample_data(&home);
    let before = everything_of(&home);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let escape: PathBuf = home.path().join("escaped.txt");

    let guests = [(Lang::Python, "hostile-py"), (Lang::Js, "hostile-js")];
    for (lang, guest) in guests {
        let component = lang.build(&format!("sample-apps/test-guests/{guest}"), scratch.path());
        let id = format!("org.example.test.{guest}");
        let manifest = format!(
            "manifest-version = 1\nid = \"{id}\"\nname = \"{guest}\"\nversion = \"0.1.0\"\nworld = \"service\"\n\
             description = \"Tries every way out of the sandbox.\"\n"
        );
        let package = scratch.path().join(format!("{guest}.dpkg"));
        pack(&home, &manifest, &component, &keys, &package);
        assert!(home.install(&package, &["all"]).ok, "{guest} installs: its WASI imports are linked");
    }

    let py = run_hostile(&home, "org.example.test.hostile-py", &json!({"port": port, "escape": escape}));
    for attack in ["read-passwd", "list-root", "list-cwd", "write-absolute", "write-relative"] {
        // No directory is preopened: every path is unknown to the guest.
        assert!(refused(&py, attack).contains("No such file or directory"), "{attack}: {py}");
    }
    for attack in ["connect", "udp"] {
        assert!(refused(&py, attack).contains("Permission denied"), "{attack}: {py}");
    }
    assert!(refused(&py, "resolve").starts_with("gaierror"), "{py}");
    assert_eq!(py["environment"]["got"], 0, "an empty environment: {py}");
    assert_eq!(py["arguments"]["got"], 0, "{py}");
    assert_eq!(py["stdin"]["got"], "''", "stdin is empty: {py}");

    let js = run_hostile(&home, "org.example.test.hostile-js", &json!({"port": port}));
    for attack in ["fetch", "fetch-post", "fetch-name"] {
        assert!(refused(&js, attack).contains("error"), "{attack}: {js}");
    }

    // Nothing reached the host: no connection, no file, no change to the data.
    assert_no_connection(&listener);
    assert!(!escape.exists(), "the Python guest wrote outside its sandbox");
    for dir in [home.path().to_owned(), std::env::current_dir().unwrap()] {
        assert!(!dir.join("escaped.txt").exists(), "a file escaped into {}", dir.display());
    }
    assert_eq!(everything_of(&home), before, "the resident's data is untouched");
    let audit = home.audit();
    assert!(
        audit.iter().all(|e| !e["app"].as_str().unwrap().starts_with("org.example.test.hostile")),
        "the guests were granted nothing and asked nothing of the data"
    );

    // What they printed and what was refused is in their log, not on the terminal.
    let logs = home.ok(&["logs"]).stdout;
    assert!(logs.contains("hostile python guest starting") && logs.contains("hostile js guest done"), "{logs}");
    assert!(logs.contains("3 outgoing HTTP request(s) refused"), "{logs}");
}
