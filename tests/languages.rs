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

    /// Checks the toolchain is installed (the tests that need it are
    /// ignored where the build found none: see `needed`).
    fn require(self) {
        let present = match self {
            Lang::Python => Command::new("componentize-py").arg("--version").output().is_ok_and(|o| o.status.success()),
            Lang::Js => repo().join("sample-apps/node_modules/.bin/componentize-js").is_file(),
        };
        let install = match self {
            Lang::Python => "pip install componentize-py==0.25.1",
            Lang::Js => "(cd sample-apps && npm ci)",
        };
        needed(present, &format!("the {} toolchain", self.name()), install);
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
#[cfg_attr(
    any(missing_componentize_py, missing_componentize_js),
    ignore = "needs componentize-py (pip install componentize-py==0.25.1) and componentize-js ((cd sample-apps && npm ci), then touch runtime/cli/build.rs)"
)]
fn python_and_javascript_sample_apps_built_from_source_compute_what_their_packages_compute() {
    let langs = [(Lang::Python, "tariff-check"), (Lang::Js, "recurring-payments")];
    langs.iter().for_each(|(lang, _)| lang.require());
    let (home, keys, scratch) = home_with_dev_key();
    for importer in ["energy-importer", "bank-importer"] {
        home.install(&sample_package(importer), &["all"]);
    }
    import_sample_data(&home);
    for (lang, app) in langs {
        let id = format!("io.domicile.sample.{app}");
        let package = sample_package(app);
        assert!(home.install(&package, &["all"]).ok);
        let committed: Value = home.ok(&["--json", "run", &id]).json();
        home.ok(&["uninstall", &id]);

        let component = lang.build(&format!("sample-apps/{app}"), scratch.path());
        assert_eq!(&component[4..8], &[0x0d, 0x00, 0x01, 0x00], "{app}: a component, not a core module");
        let rebuilt = scratch.path().join(format!("{app}.dpkg"));
        pack(&home, &manifest(app), &component, &keys, &rebuilt);
        assert!(home.install(&rebuilt, &["all"]).ok);
        let fresh: Value = home.ok(&["--json", "run", &id]).json();
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
#[cfg_attr(
    any(missing_componentize_py, missing_componentize_js),
    ignore = "needs componentize-py (pip install componentize-py==0.25.1) and componentize-js ((cd sample-apps && npm ci), then touch runtime/cli/build.rs)"
)]
fn hostile_python_and_javascript_guests_get_errors_inside_the_app_and_reach_nothing() {
    Lang::Python.require();
    Lang::Js.require();
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

    // A crash says that the app logged something first, and where to read it.
    let crash = home.run(&["run", "org.example.test.hostile-js", "--input", r#"{"crash": true}"#]);
    let said = crash.one_line_error();
    assert!(said.contains("crashed: it hit `unreachable`") && said.contains("line(s) to its log before"), "{said}");
    assert!(crash.stderr.contains("domicile logs --app org.example.test.hostile-js"), "{}", crash.stderr);

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

/// Runs `domicile` outside any home, in `dir`, with the JavaScript
/// toolchain of sample-apps on the PATH (a project's own `npm install`
/// would put it in its node_modules).
fn domicile_in(dir: &Path, args: &[&str]) -> std::process::Output {
    let path = format!(
        "{}:{}",
        repo().join("sample-apps/node_modules/.bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(env!("CARGO_BIN_EXE_domicile"))
        .args(args)
        .current_dir(dir)
        .env_remove("DOMICILE_HOME")
        .env("DOMICILE_ARTIFACT_CACHE", shared_artifact_cache())
        .env("PATH", path)
        .output()
        .unwrap()
}

fn ok_in(dir: &Path, args: &[&str]) -> String {
    let output = domicile_in(dir, args);
    assert!(output.status.success(), "domicile {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Checks rustup has Rust's WASI 0.2 target (its linker makes components).
fn rust_guest_toolchain() {
    let rustup = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l == "wasm32-wasip2"));
    needed(rustup, "Rust's wasm32-wasip2 target", "rustup target add wasm32-wasip2");
}

#[test]
#[cfg_attr(missing_componentize_py, ignore = "needs componentize-py: pip install componentize-py==0.25.1")]
fn new_makes_a_python_project_that_dev_builds_installs_and_runs() {
    Lang::Python.require();
    new_project_round_trip("python", "service");
}

#[test]
#[cfg_attr(
    missing_componentize_js,
    ignore = "needs componentize-js: (cd sample-apps && npm ci), then touch runtime/cli/build.rs"
)]
fn new_makes_a_javascript_project_that_dev_builds_installs_and_runs() {
    Lang::Js.require();
    new_project_round_trip("js", "importer");
}

#[test]
#[cfg_attr(missing_wasip2, ignore = "needs Rust's wasm32-wasip2 target: rustup target add wasm32-wasip2")]
fn new_makes_a_rust_project_that_dev_builds_installs_and_runs() {
    rust_guest_toolchain();
    new_project_round_trip("rust", "service");
}

/// `domicile new` makes a project outside the repository, in `lang` for
/// `world`, which `domicile dev` builds, installs and runs.
fn new_project_round_trip(lang: &str, world: &str) {
    let scratch = tempfile::tempdir().unwrap();
    {
        let name = format!("trial-{lang}");
        ok_in(scratch.path(), &["new", &name, "--lang", lang, "--world", world]);
        let project = scratch.path().join(&name);
        let ignored = std::fs::read_to_string(project.join(".gitignore")).unwrap();
        for secret in ["*.key", ".domicile/", "*.dpkg"] {
            assert!(ignored.lines().any(|l| l == secret), "{lang}: .gitignore must cover {secret}");
        }
        assert!(project.join("wit/domicile.wit").is_file() && project.join("README.md").is_file());

        let output = domicile_in(&project, &["--json", "dev", "--once"]);
        let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "{lang}: {stderr}");
        let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        match world {
            // The sample trips of the demo: bike, car, train and walk.
            "service" => assert_eq!(result["km_per_mode"]["bike"], 47.8, "{lang}: {result}"),
            // fixtures/notes.txt has two non-empty lines.
            _ => assert_eq!(result["lines"], 2, "{lang}: {result}"),
        }
        assert!(stderr.contains("log info"), "{lang}: the app's log is shown: {stderr}");
        assert!(project.join(".domicile/dev.key").is_file(), "{lang}: a development key");
        publish_to_a_home(&project, lang);
        let packages = || {
            std::fs::read_dir(project.join("target"))
                .map(|dir| {
                    dir.filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "dpkg")).count()
                })
                .unwrap_or(0)
        };
        if lang != "rust" {
            the_runner_runs_each_edit_without_a_build(&project, lang, world);
            if lang == "python" {
                // The whole build, as `domicile build` makes it, on request.
                let output = domicile_in(&project, &["--json", "dev", "--once", "--full-builds"]);
                assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
                assert_eq!(packages(), 1, "{lang}: one package in target/");
            }
            return; // each of their builds costs a toolchain run of ~10 s; Rust's cost ~2 s
        }
        assert_eq!(packages(), 1, "{lang}: one package in target/");
        // The project's own tests run the app natively, on the SDK's test home.
        let tests = std::process::Command::new("cargo")
            .args(["test", "--quiet"])
            .current_dir(&project)
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&tests.stdout), String::from_utf8_lossy(&tests.stderr));
        assert!(tests.status.success() && said.contains("1 passed"), "cargo test in the new project: {said}");
        // A second round over an edited app installs it in place, same
        // version; what it prints with `println!` reaches its log.
        let source = project.join("src/lib.rs");
        let edited = std::fs::read_to_string(&source).unwrap().replace(
            r#"domicile_sdk::log::info(&format!("{} transport modes", km.len()));"#,
            r#"println!("{} modes", km.len());"#,
        );
        std::fs::write(&source, edited).unwrap();
        let output = domicile_in(&project, &["dev", "--once"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(stderr.contains("log stdout 4 modes"), "the edited app ran and printed: {stderr}");

        // A manifest whose world the component does not export is refused
        // at build, from the component's exports.
        let manifest = project.join("manifest.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, text.replace("world = \"service\"", "world = \"importer\"")).unwrap();
        let output = domicile_in(&project, &["build"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "built a component of the wrong world");
        assert!(stderr.contains("the manifest's world `importer` needs `import`"), "{stderr}");
    }
}

/// The road from the project to a home: `publish` builds it, signs it with
/// the project's key, asks the home to trust that key (refused without the
/// resident's yes: `--trust-key`, or an answer on a terminal), and installs
/// it; publishing the same version again says to raise it.
fn publish_to_a_home(project: &Path, lang: &str) {
    let home = TestHome::new();
    let home_dir = home.path().to_str().unwrap().to_owned();
    let id = format!("org.example.trial-{lang}");
    let refused = domicile_in(project, &["--home", &home_dir, "publish"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("say --trust-key"), "{lang}: {said}");
    assert!(home.ok(&["--json", "apps"]).json().as_array().unwrap().is_empty(), "{lang}: nothing installed");
    ok_in(project, &["--home", &home_dir, "publish", "--trust-key", "--grant", "all"]);
    let apps = home.ok(&["--json", "apps"]).json();
    assert!(apps.as_array().unwrap().iter().any(|a| a["id"] == id), "{lang}: {apps}");
    let again = domicile_in(project, &["--home", &home_dir, "publish"]);
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && said.contains("raise `version` in manifest.toml"), "{lang}: {said}");
}

/// `domicile dev` ran a Python or JavaScript project in its runner: an
/// edit runs without building again, and the runner is of no use outside
/// `domicile dev` (no other runtime offers `domicile:app/dev-source`).
fn the_runner_runs_each_edit_without_a_build(project: &Path, lang: &str, world: &str) {
    let runner = project.join(format!(".domicile/runner/{lang}/runner.wasm"));
    assert!(runner.is_file(), "{lang}: dev built a runner");
    let (source, before, after) = match (lang, world) {
        ("python", "service") => ("app.py", "round(k, 1)", "round(k * 2, 1)"),
        ("js", "importer") => ("app.js", "kept += 1;", "kept += 10;"),
        _ => unreachable!("a case this test does not have"),
    };
    let path = project.join(source);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(before), "{lang}: the template changed: {source} has no `{before}`");
    std::fs::write(&path, text.replace(before, after)).unwrap();
    let output = domicile_in(project, &["--json", "dev", "--once"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{lang}: {stderr}");
    assert!(!stderr.contains("built this project's runner"), "{lang}: an edit built the runner again: {stderr}");
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    match world {
        "service" => assert_eq!(result["km_per_mode"]["bike"], 95.6, "{lang}: the edit ran: {result}"),
        _ => assert_eq!(result["lines"], 20, "{lang}: the edit ran: {result}"),
    }

    // A stack trace in the app's log names the line of the project's file
    // (in JavaScript, through the bundle's source map): an unexpected
    // Python exception's traceback, a JavaScript stack the app logs.
    let (after_line, added, place) = match lang {
        "python" => ("    km = {}\n", "    raise RuntimeError(\"edited\")\n", "File \"app.py\", line "),
        _ => ("  let kept = 0;\n", "  console.log(new Error('edited').stack);\n", "@app.js:"),
    };
    let edited = std::fs::read_to_string(&path).unwrap();
    assert!(edited.contains(after_line), "{lang}: the template changed: {source} has no `{after_line}`");
    let traced = edited.replacen(after_line, &format!("{after_line}{added}"), 1);
    let line = traced.lines().position(|l| format!("{l}\n") == added).unwrap() + 1;
    std::fs::write(&path, traced).unwrap();
    let output = domicile_in(project, &["dev", "--once"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown = format!("{place}{line}");
    assert!(stderr.contains(&shown), "{lang}: the log shows no `{shown}`: {stderr}");
    std::fs::write(&path, edited).unwrap();

    // The runner is not an app: installed elsewhere it is refused, and
    // the development home run by another command does not run it.
    let (home, keys, keys_dir) = home_with_dev_key();
    let manifest = std::fs::read_to_string(project.join("manifest.toml")).unwrap();
    let package = keys_dir.path().join("runner.dpkg");
    pack(&home, &manifest, &std::fs::read(&runner).unwrap(), &keys, &package);
    let install = home.run(&["install", package.to_str().unwrap()]);
    assert!(!install.ok, "{lang}: a runner installed in a home");
    assert!(install.stderr.contains("does not offer: domicile:app/dev-source@0.1.0"), "{lang}: {}", install.stderr);
    let id = format!("org.example.trial-{lang}");
    let dev_home = project.join(".domicile/home");
    let args: Vec<&str> = match world {
        "service" => vec!["--home", dev_home.to_str().unwrap(), "run", &id],
        _ => vec!["--home", dev_home.to_str().unwrap(), "import", &id, "fixtures/notes.txt"],
    };
    let run = domicile_in(project, &args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{lang}: the runner ran outside `domicile dev`");
    assert!(stderr.contains("is a runner of `domicile dev`"), "{lang}: {stderr}");
}

#[test]
fn new_and_build_say_what_is_wrong() {
    let scratch = tempfile::tempdir().unwrap();
    let output = domicile_in(scratch.path(), &["new", "Not An Id"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot name an app"));
    ok_in(scratch.path(), &["new", "taken", "--lang", "python"]);
    let output = domicile_in(scratch.path(), &["new", "taken"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists and is not empty"));
    let output = domicile_in(scratch.path(), &["build"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("is not an app project"), "{stderr}");
    // A toolchain missing from the PATH is said once, with how to install it.
    for (args, doing) in [(&["build"][..], "building the app"), (&["dev", "--once"], "building the runner of the app")]
    {
        let output = Command::new(env!("CARGO_BIN_EXE_domicile"))
            .args(args)
            .current_dir(scratch.path().join("taken"))
            .env("PATH", scratch.path())
            .env("DOMICILE_ARTIFACT_CACHE", shared_artifact_cache())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = format!("componentize-py is needed for {doing}, and it is not installed or not on the PATH: run `pip install componentize-py==");
        assert!(!output.status.success() && stderr.contains(&said), "{args:?}: {stderr}");
        assert_eq!(stderr.matches("componentize-py").count(), 2, "{args:?}: said once: {stderr}");
    }
}

/// A Python app's own tests run it natively, with plain CPython, on the
/// SDK's test home (sample-apps/sdk-python/domicile_testing.py); so do
/// the SDK's (a field it does not find is said to be maybe withheld).
#[test]
#[cfg_attr(missing_python3, ignore = "needs python3")]
fn a_python_app_is_tested_natively_on_fixture_documents() {
    for (tests, ran) in [("sample-apps/tariff-check/test_app.py", 2), ("sample-apps/sdk-python/test_domicile.py", 1)] {
        let output = Command::new("python3")
            .arg(repo().join(tests))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .expect("python3 runs (it was found when the tests were built)");
        let said = String::from_utf8_lossy(&output.stderr);
        let count = format!("Ran {ran} test");
        assert!(output.status.success() && said.contains(&count), "{tests}: {said}");
    }
}

/// A JavaScript app's own tests run it natively, with Node, on the SDK's
/// test home (sample-apps/sdk-js/domicile_testing.mjs); so do the SDK's
/// (a field a document does not hold is said to be maybe withheld).
#[test]
#[cfg_attr(missing_node, ignore = "needs Node.js (node)")]
fn a_javascript_app_is_tested_natively_on_fixture_documents() {
    for (tests, passed) in
        [("sample-apps/recurring-payments/test_app.mjs", 2), ("sample-apps/sdk-js/test_domicile.mjs", 1)]
    {
        let output = Command::new("node")
            .args(["--test", "--test-reporter=tap"])
            .arg(repo().join(tests))
            .output()
            .expect("node runs (it was found when the tests were built)");
        let said = String::from_utf8_lossy(&output.stdout);
        let count = format!("# pass {passed}");
        assert!(
            output.status.success() && said.contains(&count),
            "{tests}: {said}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
