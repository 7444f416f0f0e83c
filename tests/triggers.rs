//! Apps that run on their own, driven through the real binary on a real
//! home: on-change triggers fire once per write (an import of hundreds of
//! readings is one run), not for the app's own writes, not while switched
//! off; a missed schedule runs once; an event whose run never started runs
//! after, once; a run a SIGKILL stopped is not repeated; a failing trigger
//! backs off and says why in the app's log.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const ENERGY_IMPORTER: &str = "io.domicile.sample.energy-importer";
const ENERGY_INSIGHTS: &str = "io.domicile.sample.energy-insights";
const BANK_IMPORTER: &str = "io.domicile.sample.bank-importer";
const BUDGET: &str = "io.domicile.sample.budget";
const GPX_IMPORTER: &str = "io.domicile.sample.gpx-importer";

fn triggers(home: &TestHome, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json", "triggers"];
    all.extend(args);
    home.ok(&all).json().as_array().unwrap().clone()
}

fn state_of(home: &TestHome, app: &str) -> Value {
    triggers(home, &[]).into_iter().find(|t| t["app"] == app).unwrap_or_else(|| panic!("no trigger of {app}"))
}

fn notifications(home: &TestHome) -> Vec<Value> {
    home.ok(&["--json", "notifications"]).json().as_array().unwrap().clone()
}

fn energy_home() -> TestHome {
    let home = TestHome::new();
    home.install(&sample_package("energy-importer"), &["all"]);
    home.install(&sample_package("energy-insights"), &["all"]);
    home
}

#[test]
fn new_readings_run_energy_insights_once_per_import_and_it_tells_how_the_month_compares() {
    let home = energy_home();
    let listed = home.ok(&["triggers"]).stdout;
    assert!(
        listed.contains(&format!("{ENERGY_INSIGHTS} #1: runs when io.domicile.energy.reading documents")),
        "{listed}"
    );
    assert!(listed.contains("state: not run yet"), "{listed}");

    // 671 readings in one import: one run, before the command ends.
    let curve = sample_data("enedis-load-curve-2026-03.csv");
    let import = home.ok(&["import", ENERGY_IMPORTER, curve.to_str().unwrap()]);
    assert!(import.stderr.contains(&format!("trigger: {ENERGY_INSIGHTS} ran on its own")), "{}", import.stderr);
    assert_eq!(state_of(&home, ENERGY_INSIGHTS)["state"]["runs"], 1);
    let index = sample_data("enedis-daily-index-2025-2026.csv");
    home.ok(&["import", ENERGY_IMPORTER, index.to_str().unwrap()]);
    assert_eq!(state_of(&home, ENERGY_INSIGHTS)["state"]["runs"], 2, "one more run for the second file");

    // What it says is what the service computes.
    let report = home.ok(&["--json", "run", ENERGY_INSIGHTS]).json();
    let march = &report["months"]["2026-03"];
    let news: Vec<Value> = notifications(&home).into_iter().filter(|n| n["app"] == ENERGY_INSIGHTS).collect();
    assert_eq!(news.len(), 2, "{news:?}");
    let last = &news[news.len() - 1];
    assert_eq!(last["title"], "Electricity, 2026-03 so far");
    let kwh = (march["kwh"].as_f64().unwrap() * 10.0).round() / 10.0;
    let pct = march["same_days_last_year"]["change_pct"].as_f64().unwrap();
    assert_eq!(last["body"], format!("{kwh} kWh over 14 days, +{pct} % on the same 14 days last year"), "{last}");
    // Every trigger run is audited like a run of the resident's.
    let reads = home.ok(&["--json", "audit", "--app", ENERGY_INSIGHTS]).json();
    let documents: u64 = reads.as_array().unwrap().iter().map(|e| e["documents"].as_u64().unwrap()).sum();
    assert_eq!(documents, 671 + 1051 + 1051, "runs on 671 readings, then on 671 + 380, then the manual one");

    // A manual run is not a trigger; nothing new, nothing runs.
    let due = home.ok(&["triggers", "run-due"]);
    assert!(due.stderr.contains("0 trigger run(s)"), "{}", due.stderr);
}

#[test]
fn a_trigger_switched_off_does_not_run_and_switched_on_counts_from_then() {
    let home = energy_home();
    let off = home.ok(&["triggers", "off", ENERGY_INSIGHTS]).stdout;
    assert!(off.contains("will no longer run on its own when io.domicile.energy.reading documents"), "{off}");
    let curve = sample_data("enedis-load-curve-2026-03.csv");
    let import = home.ok(&["import", ENERGY_IMPORTER, curve.to_str().unwrap()]);
    assert!(!import.stderr.contains("trigger:"), "{}", import.stderr);
    assert_eq!(state_of(&home, ENERGY_INSIGHTS)["enabled"], false);
    assert!(home.ok(&["triggers"]).stdout.contains("state: switched off"));

    home.ok(&["triggers", "on", ENERGY_INSIGHTS, "1"]);
    let due = home.ok(&["triggers", "run-due"]);
    assert!(due.stderr.contains("0 trigger run(s)"), "what happened while off does not count: {}", due.stderr);
    let index = sample_data("enedis-daily-index-2025-2026.csv");
    let import = home.ok(&["import", ENERGY_IMPORTER, index.to_str().unwrap()]);
    assert!(import.stderr.contains(&format!("trigger: {ENERGY_INSIGHTS} ran on its own")), "{}", import.stderr);
    let err = home.run(&["triggers", "off", ENERGY_INSIGHTS, "2"]).one_line_error().to_owned();
    assert!(err.contains("has 1 trigger(s)"), "{err}");
}

/// An app with an on-change trigger on trips, from a fixture component.
fn install_with_trigger(home: &TestHome, fixture: &str, limits: &str) {
    let keys = tempfile::tempdir().unwrap();
    let publisher = Keys::generate(home, keys.path(), "publisher");
    home.ok(&["trust", "add", &publisher.public()]);
    let manifest = format!(
        "manifest-version = 1\nid = \"org.example.test.{fixture}-on-trips\"\nname = \"{fixture} on new trips\"\n\
         version = \"0.1.0\"\nworld = \"service\"\ndescription = \"Test fixture run by new trips.\"\n\n\
         [[permissions]]\ndoctype = \"io.domicile.mobility.trip\"\naccess = [\"read\"]\npurpose = \"Read your trips\"\n\n\
         [[triggers]]\non-change = \"io.domicile.mobility.trip\"\npurpose = \"Run when new trips arrive\"\n\n[limits]\n{limits}\n"
    );
    let package = home.path().join(format!("{fixture}.dpkg"));
    pack(home, &manifest, &component_of(&fixture_package(fixture)), &publisher, &package);
    home.install(&package, &["all"]);
}

#[test]
fn an_event_whose_run_never_started_runs_once_and_a_run_a_crash_stopped_is_not_repeated() {
    let home = TestHome::new();
    home.install(&sample_package("gpx-importer"), &["all"]);
    install_with_trigger(&home, "cpu-hog", "cpu-ms = 30000\nwall-ms = 30000");
    let app = "org.example.test.cpu-hog-on-trips";

    // The import commits, its trigger does not run: what a crash right after
    // the commit leaves. The next check runs it, and only once.
    home.ok(&["import", "--no-triggers", GPX_IMPORTER, sample_gpx().to_str().unwrap()]);
    assert_eq!(state_of(&home, app)["state"]["runs"], 0);
    let mut due = home.command(&["triggers", "run-due"]).spawn().unwrap();
    // The hog spins for its 30 s of CPU: SIGKILL the process mid-run.
    std::thread::sleep(Duration::from_secs(4));
    due.kill().unwrap();
    due.wait().unwrap();

    let again = home.ok(&["triggers", "run-due"]);
    assert!(again.stderr.contains("0 trigger run(s)"), "the stopped run is not repeated: {}", again.stderr);
    let state = state_of(&home, app);
    assert!(state["state"]["last_outcome"].as_str().unwrap().starts_with("interrupted"), "{state}");
    assert!(state["state"]["running"].is_null(), "{state}");
    let log = home.ok(&["logs", "--app", app]).stdout;
    assert!(log.contains("was interrupted (domicile stopped); it is not repeated"), "{log}");
    // The changes it was handling count as handled; a new change runs it again.
    let again = home.ok(&["triggers", "run-due"]);
    assert!(again.stderr.contains("0 trigger run(s)"), "{}", again.stderr);
    assert!(home.ok(&["audit", "verify"]).stdout.contains("intact"));
}

#[test]
fn a_failing_trigger_backs_off_and_says_why_in_the_apps_log() {
    let home = TestHome::new();
    home.install(&sample_package("gpx-importer"), &["all"]);
    // The hostile guest refuses an input without an attack: every run fails.
    install_with_trigger(&home, "hostile", "wall-ms = 5000");
    let app = "org.example.test.hostile-on-trips";
    let import = home.ok(&["import", GPX_IMPORTER, sample_gpx().to_str().unwrap()]);
    assert!(import.stderr.contains(&format!("trigger: {app} failed")), "{}", import.stderr);
    let log = home.ok(&["logs", "--app", app]).stdout;
    assert!(log.contains("trigger `on-change io.domicile.mobility.trip` failed (1 in a row; next try after"), "{log}");
    assert!(log.contains("unknown attack"), "{log}");
    let state = state_of(&home, app);
    assert_eq!(state["state"]["failures"], 1);
    let retry = state["state"]["retry_after_ms"].as_u64().unwrap();

    // Not before its time; then again, and the wait doubles.
    let due = home.ok(&["triggers", "run-due"]);
    assert!(due.stderr.contains("0 trigger run(s)"), "{}", due.stderr);
    let later = rfc3339_of_ms(retry + 1000);
    let due = home.command(&["triggers", "run-due"]).env("DOMICILE_CLOCK", &later).output().unwrap();
    assert!(String::from_utf8_lossy(&due.stderr).contains(&format!("trigger: {app} failed")));
    let state = state_of(&home, app);
    assert_eq!(state["state"]["failures"], 2);
    assert_eq!(state["state"]["retry_after_ms"].as_u64().unwrap(), retry + 1000 + 120_000, "{state}");
    assert!(home.ok(&["triggers"]).stdout.contains("failing (2 in a row)"));
}

#[test]
fn a_weekly_schedule_missed_three_times_runs_once_in_the_homes_time_zone() {
    let home = TestHome::new();
    std::fs::write(home.path().join("config.toml"), "[triggers]\ntime-zone = \"Europe/Paris\"\n").unwrap();
    let at = |clock: &str, args: &[&str]| {
        let out = home.command(args).env("DOMICILE_CLOCK", clock).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // Installed on Friday 20 February: the schedule starts from Monday 16 February's slot.
    for app in ["bank-importer", "budget"] {
        at("2026-02-20T12:00:00Z", &["install", sample_package(app).to_str().unwrap(), "--grant", "all"]);
    }
    for file in ["bank-2026-02.ofx", "bank-2026-03.csv"] {
        at("2026-02-20T12:00:00Z", &["import", BANK_IMPORTER, sample_data(file).to_str().unwrap()]);
    }
    let (_, stderr) = at("2026-02-20T13:00:00Z", &["triggers", "run-due"]);
    assert!(stderr.contains("0 trigger run(s)"), "{stderr}");

    // Nothing ran on 23 February, 2 March or 9 March: on Tuesday 10 March it runs once, for 9 March.
    let (_, stderr) = at("2026-03-10T10:00:00Z", &["triggers", "run-due"]);
    assert!(stderr.contains(&format!("trigger: {BUDGET} ran on its own (every Monday at 08:00)")), "{stderr}");
    assert!(stderr.contains("1 trigger run(s)"), "{stderr}");
    let (_, stderr) = at("2026-03-10T11:00:00Z", &["triggers", "run-due"]);
    assert!(stderr.contains("0 trigger run(s)"), "{stderr}");

    // It summed up the seven days before Monday 9 March, 08:00 in Paris.
    let spent: f64 = home
        .docs("io.domicile.bank.operation")
        .iter()
        .map(|d| &d["body"])
        .filter(|b| {
            ("2026-03-02".."2026-03-09").contains(&b["date"].as_str().unwrap()) && b["amount"].as_f64().unwrap() < 0.0
        })
        .map(|b| -b["amount"].as_f64().unwrap())
        .sum();
    let news: Vec<Value> = notifications(&home).into_iter().filter(|n| n["app"] == BUDGET).collect();
    assert_eq!(news.len(), 1, "{news:?}");
    let body = news[0]["body"].as_str().unwrap();
    assert!(body.starts_with(&format!("{} EUR spent in", (spent * 100.0).round() / 100.0)), "{body} vs {spent}");
    assert!(body.ends_with("from 2026-03-02 to 2026-03-08"), "{body}");
    // Next: Monday 16 March, 08:00 in Paris (07:00 UTC).
    let (stdout, _) = at("2026-03-10T11:00:00Z", &["--json", "triggers"]);
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    let budget = listed.as_array().unwrap().iter().find(|t| t["app"] == BUDGET).unwrap();
    assert_eq!(budget["next_run_ms"], 1_773_644_400_000u64, "{budget}");
}

/// `domicile serve` runs on-change triggers in the background, after the
/// writes settle, once; a trigger the resident did not tick at install is
/// off, and the web API switches it on. Trigger runs are counted apart.
#[test]
fn the_server_runs_triggers_in_the_background_as_the_resident_chose() {
    use common::server::{Client, Server};
    let home = TestHome::new().with_sample_catalogue();
    let password = home.set_password("me");
    let server = Server::start(&home);
    let me = Client::signed_in(&server.url, "me", &password);
    let install = |app: &str, triggers: Value| {
        me.post("/api/v1/apps", &serde_json::json!({ "app": app, "grants": ["all"], "triggers": triggers })).ok().json()
    };
    install(ENERGY_IMPORTER, serde_json::json!([]));
    let insights = install(ENERGY_INSIGHTS, serde_json::json!([1]));
    assert_eq!(insights["triggers"][0]["enabled"], true, "{insights}");
    install("io.domicile.sample.learning-importer", serde_json::json!([]));
    let dashboard = install("io.domicile.sample.learning-dashboard", serde_json::json!([]));
    assert_eq!(dashboard["triggers"][0]["enabled"], false, "not ticked, not on: {dashboard}");

    let upload = |importer: &str, file: &str| {
        let bytes = std::fs::read(sample_data(file)).unwrap();
        me.upload(&format!("/api/v1/apps/{importer}/import?file={file}"), bytes).ok();
    };
    upload(ENERGY_IMPORTER, "enedis-load-curve-2026-03.csv");
    upload("io.domicile.sample.learning-importer", "xapi-lea-2026.json");
    let started = std::time::Instant::now();
    let news = loop {
        let news = me.get("/api/v1/notifications").ok().json();
        if news.as_array().unwrap().iter().any(|n| n["app"] == ENERGY_INSIGHTS) {
            break news;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no trigger ran within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(news.as_array().unwrap().len(), 1, "the dashboard's trigger is off: {news}");
    // Quiet: the server does not run it again.
    std::thread::sleep(Duration::from_secs(3));
    let apps = me.get("/api/v1/apps").ok().json();
    let of = |id: &str| apps.as_array().unwrap().iter().find(|a| a["id"] == id).unwrap()["triggers"][0].clone();
    assert_eq!(of(ENERGY_INSIGHTS)["state"]["runs"], 1, "{apps}");
    assert!(of("io.domicile.sample.learning-dashboard")["state"]["last_run_ms"].is_null());

    let switched = me
        .post(
            "/api/v1/apps/io.domicile.sample.learning-dashboard/triggers",
            &serde_json::json!({ "number": 1, "enabled": true }),
        )
        .ok()
        .json();
    assert_eq!(switched["triggers"][0]["enabled"], true, "{switched}");
    let metrics = me.get("/metrics").ok().text();
    assert!(metrics.contains("domicile_app_runs_total{kind=\"trigger\",outcome=\"ok\"} 1"), "{metrics}");
}

/// A write a stopped process left without its trigger run: the server
/// looks, after it starts, at the residents written since their last look
/// (whatever process wrote them), and runs it; the residents nobody wrote
/// are not even opened (a space sled opened once takes at least a 64 KiB
/// segment on disk; one never opened since its creation, a few KB).
#[test]
fn a_server_started_after_an_unrun_event_runs_it() {
    use common::server::{Client, Server};
    let home = energy_home();
    let password = home.set_password("me");
    let idle: Vec<String> = (0..20).map(|i| format!("idle{i}")).collect();
    for name in &idle {
        home.ok(&["resident", "add", name]);
    }
    let curve = sample_data("enedis-load-curve-2026-03.csv");
    home.ok(&["--resident", "me", "import", "--no-triggers", ENERGY_IMPORTER, curve.to_str().unwrap()]);
    let server = Server::start(&home);
    let me = Client::signed_in(&server.url, "me", &password);
    let started = std::time::Instant::now();
    while !me.get("/api/v1/notifications").ok().json().to_string().contains("Electricity, 2026-03 so far") {
        assert!(started.elapsed() < Duration::from_secs(30), "the server did not run the pending trigger");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A few ticks more: any other look a start would make is made.
    std::thread::sleep(Duration::from_secs(3));
    let metrics = me.get("/metrics").ok().text();
    assert!(metrics.contains("domicile_trigger_looks_due 0"), "{metrics}");
    drop(server);
    for name in &idle {
        let space = home.path().join("spaces/residents").join(name);
        let bytes: u64 = std::fs::read_dir(&space).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        assert!(bytes < 16 * 1024, "{name}'s space was opened by the start: {bytes} bytes");
    }
}

/// Two apps made due by the same write: the server runs one trigger a tick
/// per resident, and the other on a later tick, without another write.
#[test]
fn the_server_runs_every_trigger_one_write_made_due() {
    use common::server::Server;
    let home = TestHome::new();
    home.install(&sample_package("gpx-importer"), &["all"]);
    install_with_trigger(&home, "hostile", "wall-ms = 5000");
    install_with_trigger(&home, "snooper", "wall-ms = 5000");
    let server = Server::start(&home);
    // Through the server (it holds the home), with the triggers left to it.
    home.ok(&["import", "--no-triggers", GPX_IMPORTER, sample_gpx().to_str().unwrap()]);
    let started = std::time::Instant::now();
    loop {
        let ran: Vec<Value> = triggers(&home, &[]).into_iter().filter(|t| t["state"]["last_run_ms"].is_u64()).collect();
        if ran.len() == 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "only {} of the 2 triggers ran: {ran:?}", ran.len());
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(server);
}
