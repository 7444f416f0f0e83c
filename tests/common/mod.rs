//! Helpers shared by the end-to-end tests: a temporary home and a way to
//! run the real `domicile` binary against it.
#![allow(dead_code)]

pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const TRIP: &str = "io.domicile.mobility.trip";
/// One valid trip document.
pub const TRIP_DOC: &str = r#"{"start": "2026-03-02T08:00:00Z", "end": "2026-03-02T08:20:00Z", "date": "2026-03-02", "month": "2026-03", "mode": "bike", "distance_m": 4200, "duration_s": 1200}"#;
pub const IMPORTER: &str = "io.domicile.sample.gpx-importer";
pub const FOOTPRINT: &str = "io.domicile.sample.mobility-footprint";
pub const SNOOPER: &str = "org.example.test.snooper";

/// One compile cache for every home of the test suite: each app is
/// compiled once (an 18 MB Python app takes 10 s), not once per home. A
/// test of the cache itself gives its home its own (`[engine] artifact-cache`).
pub fn shared_artifact_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifact-cache")
}

/// The repository root (this file is compiled from runtime/cli).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The package of a sample app in the sample catalogue (its one version).
pub fn sample_package(name: &str) -> PathBuf {
    let dir = repo().join("sample-apps/catalogue/packages");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let file = p.file_name().unwrap().to_string_lossy();
            file.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    assert_eq!(found.len(), 1, "expected one package of {name} in {}", dir.display());
    found.remove(0)
}

pub fn sample_catalogue() -> PathBuf {
    repo().join("sample-apps/catalogue")
}

pub fn fixture_package(name: &str) -> PathBuf {
    repo().join("tests/fixtures/packages").join(format!("{name}.dpkg"))
}

/// An input made to attack domicile (`tests/fixtures/hostile/`).
pub fn fixture_hostile(name: &str) -> PathBuf {
    repo().join("tests/fixtures/hostile").join(name)
}

pub fn sample_gpx() -> PathBuf {
    repo().join("sample-apps/data/week-around-nantes.gpx")
}

/// A file of `sample-apps/data` (the sample exports of data holders).
pub fn sample_data(name: &str) -> PathBuf {
    repo().join("sample-apps/data").join(name)
}

/// A file of `tests/fixtures/data` (broken exports).
pub fn fixture_data(name: &str) -> PathBuf {
    repo().join("tests/fixtures/data").join(name)
}

/// A real-world export of the corpus (`tests/fixtures/corpus/<format>/`).
pub fn fixture_corpus(format: &str, name: &str) -> PathBuf {
    repo().join("tests/fixtures/corpus").join(format).join(name)
}

pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Asserts failure with exactly one line on stderr, and returns it.
    pub fn one_line_error(&self) -> &str {
        assert!(!self.ok, "expected a failure, got success: {}", self.stdout);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr, got: {}", self.stderr);
        lines[0]
    }
}

/// Copies a folder and all it holds (fixtures are copied, never opened in place).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A fresh home in a temporary directory, with the sample key trusted.
pub struct TestHome {
    pub dir: tempfile::TempDir,
}

impl TestHome {
    pub fn new() -> TestHome {
        let home = TestHome::untrusting();
        home.ok(&[
            "trust",
            "add",
            repo().join("sample-apps/keys/sample-publisher.pub").to_str().unwrap(),
            "--name",
            "sample",
        ]);
        home
    }

    /// A home that trusts no key.
    pub fn untrusting() -> TestHome {
        let home = TestHome { dir: tempfile::tempdir().unwrap() };
        home.ok(&["init"]);
        home
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_domicile"));
        cmd.arg("--home")
            .arg(self.path())
            .args(args)
            .env_remove("DOMICILE_HOME")
            .env_remove("DOMICILE_RESIDENT")
            .env("DOMICILE_CLOCK", "2026-03-05T10:00:00Z")
            .env("DOMICILE_ARTIFACT_CACHE", shared_artifact_cache())
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the binary; panics if it has not finished within 60 s (a
    /// liveness guard so a broken limit fails the test instead of hanging
    /// it, not a performance assertion).
    pub fn run(&self, args: &[&str]) -> Run {
        use std::io::Read;
        let mut child = self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // Drain both pipes while waiting, or a large output would block the child.
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                pipe.read_to_end(&mut bytes).ok();
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        let status = wait_at_most_60_s(&mut child, &format!("domicile {args:?}"));
        Run::from(Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() })
    }

    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert!(run.ok, "domicile {args:?} failed: {}{}", run.stderr, run.stdout);
        run
    }

    pub fn install(&self, package: &Path, grants: &[&str]) -> Run {
        let mut args = vec!["install", package.to_str().unwrap()];
        for g in grants {
            args.extend(["--grant", g]);
        }
        self.run(&args)
    }

    pub fn installed_apps(&self) -> Vec<String> {
        let apps = self.ok(&["--json", "apps"]).json();
        apps.as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
    }

    pub fn docs(&self, doctype: &str) -> Vec<serde_json::Value> {
        self.ok(&["--json", "docs", doctype]).json().as_array().unwrap().clone()
    }

    pub fn audit(&self) -> Vec<serde_json::Value> {
        self.ok(&["--json", "audit"]).json().as_array().unwrap().clone()
    }
}

/// The component inside a package file (layout in runtime/package:
/// magic 20 · key 32 · signature 64 · u32 LE manifest length · manifest ·
/// u64 LE component length · component).
pub fn component_of(package: &Path) -> Vec<u8> {
    let bytes = std::fs::read(package).unwrap();
    let manifest_len = u32::from_le_bytes(bytes[116..120].try_into().unwrap()) as usize;
    let at = 120 + manifest_len;
    let component_len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    bytes[at + 8..at + 8 + component_len].to_vec()
}

/// Waits for the child to exit; kills it and panics after 60 s (a liveness
/// guard, not a timing assertion).
pub fn wait_at_most_60_s(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().ok();
            panic!("{what} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A publisher key pair made by `domicile keygen`, in `dir`.
pub struct Keys {
    pub prefix: PathBuf,
}

impl Keys {
    pub fn generate(home: &TestHome, dir: &Path, name: &str) -> Keys {
        let prefix = dir.join(name);
        home.ok(&["keygen", "--out", prefix.to_str().unwrap()]);
        Keys { prefix }
    }
    pub fn secret(&self) -> String {
        format!("{}.key", self.prefix.display())
    }
    pub fn public(&self) -> String {
        std::fs::read_to_string(format!("{}.pub", self.prefix.display())).unwrap().trim().to_owned()
    }
}

/// Signs `manifest` and `component` into `out` with `keys`, through `domicile pack`.
pub fn pack(home: &TestHome, manifest: &str, component: &[u8], keys: &Keys, out: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = (dir.path().join("manifest.toml"), dir.path().join("component.wasm"));
    std::fs::write(&m, manifest).unwrap();
    std::fs::write(&c, component).unwrap();
    home.ok(&[
        "pack",
        "--manifest",
        m.to_str().unwrap(),
        "--component",
        c.to_str().unwrap(),
        "--key",
        &keys.secret(),
        "--out",
        out.to_str().unwrap(),
    ]);
}

/// A real HTTP server on 127.0.0.1: each request's method and URL, content
/// type and body are sent on the channel.
pub struct Receiver {
    pub port: u16,
    pub received: std::sync::mpsc::Receiver<(String, String, Vec<u8>)>,
}

pub fn http_receiver() -> Receiver {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let (tx, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = Vec::new();
            std::io::Read::read_to_end(request.as_reader(), &mut body).unwrap();
            let content_type = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Content-Type"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            tx.send((format!("{} {}", request.method(), request.url()), content_type, body)).ok();
            request.respond(tiny_http::Response::from_string("thanks")).ok();
        }
    });
    Receiver { port, received }
}

/// Days since 1970-01-01 of an ISO date `2026-03-02`.
pub fn day_number(date: &str) -> i64 {
    let date = time::Date::parse(date, time::macros::format_description!("[year]-[month]-[day]")).unwrap();
    i64::from(
        date.to_julian_day() - time::Date::from_calendar_date(1970, time::Month::January, 1).unwrap().to_julian_day(),
    )
}

/// RFC 3339 (UTC) of Unix milliseconds, as `DOMICILE_CLOCK` reads it.
pub fn rfc3339_of_ms(ms: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    at.format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// Checks that an outside program a test needs is `present`, and fails the
/// test saying how to install it (`install`) when it is not. A test never
/// passes having done nothing: where the tests were built without the
/// program, `runtime/cli/build.rs` set a cfg (`missing_nats`, ...) that
/// marks them ignored with the reason, so the suite is green on a machine
/// that has only Rust and says what it did not run; under CI (`CI` set),
/// where `.ci/run` installs everything, no test is ignored. Reaching this
/// without the program means it went away since the build.
pub fn needed(present: bool, what: &str, install: &str) {
    assert!(
        present,
        "{what} is not installed: {install}; it was there when the tests were built (else this test would be ignored): install it again, or rebuild the tests"
    );
}

/// An energy meter's load curve as Enedis exports it, `rows` half-hourly
/// readings long (60,000 take an importer seconds in a debug build).
pub fn load_curve_csv(rows: i64) -> String {
    let mut curve = String::from(
        "Identifiant PRM;Type de donnees;Date de debut;Date de fin;Grandeur physique;Grandeur metier;Etape metier;Unite\n\
         25946599093143;Courbe de charge;01/01/1970;01/01/2100;Energie active;Consommation;Comptage Brut;W\n\
         Horodate;Valeur\n",
    );
    let start = time::OffsetDateTime::from_unix_timestamp(1_600_000_000).unwrap();
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    for i in 0..rows {
        let at = (start + time::Duration::minutes(30 * i)).format(&format).unwrap();
        curve.push_str(&format!("{at};{}\n", 150 + (i * 7919) % 2500));
    }
    curve
}

/// The energy campaign of Nantes, written as an organiser would.
pub fn campaign_file(dir: &std::path::Path) -> std::path::PathBuf {
    let (leader, helper) =
        (domicile_campaign::AggregatorKeys::generate(), domicile_campaign::AggregatorKeys::generate());
    let campaign = serde_json::json!({
        "id": "fr.nantes.energy-2026",
        "organiser": "Nantes Métropole",
        "purpose": "Compare each household's winter with its neighbourhood's",
        "question": { "app": "io.domicile.sample.energy-insights", "computes": "kWh of January 2026", "unit": "kWh" },
        "aggregation": { "type": "histogram", "bounds": [100.0, 200.0, 400.0, 800.0] },
        "aggregators": [
            { "name": "Nantes Métropole", "url": "https://agregation.nantesmetropole.example", "hpke_public_key": leader.public, "result_key": leader.result_public },
            { "name": "Observatoire indépendant", "url": "https://observatoire.example", "hpke_public_key": helper.public, "result_key": helper.result_public },
        ],
        "minimum_batch": 100,
        "deadline_ms": 1_800_000_000_000u64,
        "published_to": "every participant, and the city's open data portal",
        "neighbourhoods": "postcode",
    });
    let path = dir.join("energy.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&campaign).unwrap()).unwrap();
    path
}
