//! `domicile serve` over real HTTP on 127.0.0.1:0: the resident's API,
//! sign-in and CSRF, isolation between residents, the operator's API,
//! per-resident limits, graceful shutdown, health and metrics.

mod common;

use std::process::Command;

use common::server::{Client, Server};
use common::*;
use domicile_home::Operation;
use serde_json::{json, Value};

const LEARNING_IMPORTER: &str = "io.domicile.sample.learning-importer";
const DASHBOARD: &str = "io.domicile.sample.learning-dashboard";
const ALLOWANCE: &str = "io.domicile.sample.mobility-allowance";
const STATEMENT: &str = "io.domicile.learning.statement";
const CPU_HOG: &str = "org.example.test.cpu-hog";

fn read(path: std::path::PathBuf) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// A home with the sample catalogue and a resident `me` with a password.
fn home_and_password() -> (TestHome, String) {
    let home = TestHome::new().with_sample_catalogue();
    let password = home.set_password("me");
    (home, password)
}

fn install(client: &Client, app: &str, grants: &[&str]) -> Value {
    client.post("/api/v1/apps", &json!({ "app": app, "grants": grants })).ok().json()
}

fn upload(client: &Client, importer: &str, file: &str, bytes: Vec<u8>) -> common::server::Reply {
    client.upload(&format!("/api/v1/apps/{importer}/import?file={file}"), bytes)
}

#[test]
fn a_resident_does_over_http_what_the_cli_does() {
    let (home, password) = home_and_password();
    let server = Server::start(&home);
    let me = Client::signed_in(&server.url, "me", &password);

    // The catalogue says what each app asks, why, and where it may send data.
    let catalogue = me.get("/api/v1/catalogue").ok().json();
    let apps = catalogue["apps"].as_array().unwrap();
    let packages = std::fs::read_dir(sample_catalogue().join("packages")).unwrap().count();
    assert_eq!(apps.len(), packages, "{catalogue}");
    let allowance = apps.iter().find(|a| a["id"] == ALLOWANCE).unwrap();
    assert!(allowance["asks"].as_str().unwrap().contains("ask to send data to https://"), "{allowance}");
    assert_eq!(allowance["permissions"][0]["title"], "A journey from one place to another");
    assert_eq!(allowance["installed"], Value::Null);

    // Install with a partial grant: the dashboard may not read results.
    install(&me, LEARNING_IMPORTER, &[&format!("{STATEMENT}:write")]);
    let dashboard = install(&me, DASHBOARD, &[&format!("{STATEMENT}:read:verb,subject,date")]);
    assert_eq!(dashboard["granted"], format!("{STATEMENT}:read:date,subject,verb"));

    let summary = upload(&me, LEARNING_IMPORTER, "xapi-lea-2026.json", read(sample_data("xapi-lea-2026.json"))).ok();
    assert!(summary.json()["output"].to_string().contains("18"), "{}", summary.text());
    let broken = upload(&me, LEARNING_IMPORTER, "xapi-broken.json", read(fixture_data("xapi-broken.json")));
    assert_eq!(broken.status, 422);
    assert!(
        broken.error().contains("nothing was imported") || broken.error().contains("statement"),
        "{}",
        broken.error()
    );

    // The same file, asking for its valid records: the broken one is listed, the others imported.
    let partial =
        upload(&me, LEARNING_IMPORTER, "xapi-broken.json&partial=true", read(fixture_data("xapi-broken.json")));
    let left_out = partial.ok().json()["left_out"].clone();
    assert_eq!(left_out.as_array().unwrap().len(), 1, "{left_out}");
    assert!(left_out[0]["location"].as_str().unwrap().starts_with("statement 4 (9f1c0004-"), "{left_out}");
    assert_eq!(left_out[0]["reason"], "no verb.id");

    let report = me.post(&format!("/api/v1/apps/{DASHBOARD}/run"), &json!({})).ok().json()["output"].clone();
    assert_eq!(report["months"]["2026-02"]["statements"], 9, "{report}");
    assert_eq!(report["months"]["2026-02"]["subjects"]["maths"]["avg_score"], Value::Null, "results were not granted");

    // Documents, counts, search.
    let doctypes = me.get("/api/v1/doctypes").ok().json();
    // The span of their timestamps, as the index orders them, and the importer that brings them.
    let statements = me.get(&format!("/api/v1/docs/{STATEMENT}?limit=100")).ok().json();
    let stamps: std::collections::BTreeSet<String> = statements["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["body"]["timestamp"].as_str().unwrap().to_owned())
        .collect();
    let span = json!({ "field": "timestamp", "first": stamps.first(), "last": stamps.last() });
    assert_eq!(
        doctypes,
        json!([{ "doctype": STATEMENT, "count": 18, "title": "A learning record (xAPI statement)", "span": span,
                 "importers": [LEARNING_IMPORTER] }])
    );
    let found = me.get(&format!("/api/v1/docs/{STATEMENT}?limit=3&sort=-date")).ok().json();
    assert_eq!(found["documents"].as_array().unwrap().len(), 3);
    assert_eq!(found["more"], true);
    let bad = me.get(&format!("/api/v1/docs/{STATEMENT}?where=%7Bnot%20json"));
    assert_eq!(bad.status, 400, "{}", bad.text());

    // Revoke, run: denied, and the audit log says so.
    me.post(&format!("/api/v1/apps/{DASHBOARD}/revoke"), &json!({})).ok();
    let denied = me.post(&format!("/api/v1/apps/{DASHBOARD}/run"), &json!({}));
    assert_eq!(denied.status, 422, "{}", denied.text());
    assert!(denied.error().contains("denied") || denied.error().contains("not granted"), "{}", denied.error());
    let audit = me.get(&format!("/api/v1/audit?app={DASHBOARD}")).ok().json();
    assert!(audit.as_array().unwrap().iter().any(|e| e["outcome"] == "denied"), "{audit}");
    let sentences = me.get("/api/v1/audit/summary").ok().json();
    assert!(
        sentences.as_array().unwrap().iter().any(|s| s["sentence"].as_str().unwrap().contains("read")),
        "{sentences}"
    );
    assert_eq!(me.get("/api/v1/audit/verify").ok().json()["intact"], true);
    let metrics = Client::new(&server.url).get("/metrics").ok().text();
    let denials = metrics.lines().find_map(|l| l.strip_prefix("domicile_denials_total ")).unwrap_or("0");
    assert!(denials.parse::<f64>().unwrap() >= 1.0, "the refused read is counted: {metrics}");

    // The outbox: a declaration waits; denying it means it is never sent.
    install(&me, IMPORTER, &["io.domicile.mobility.trip:write"]);
    install(&me, ALLOWANCE, &["all"]);
    upload(&me, IMPORTER, "week.gpx", read(sample_gpx())).ok();
    let queued = me.post(&format!("/api/v1/apps/{ALLOWANCE}/run"), &json!({})).ok().json();
    let id = queued["output"]["outbox_id"].as_str().unwrap().to_owned();
    let outbox = me.get("/api/v1/outbox").ok().json();
    assert_eq!(outbox[0]["status"]["state"], "pending");
    assert_eq!(outbox[0]["id"].to_string(), id);
    let denied = me.post(&format!("/api/v1/outbox/{id}/deny"), &json!({})).ok().json();
    assert_eq!(denied["status"]["state"], "denied");
    assert_eq!(me.post(&format!("/api/v1/outbox/{id}/approve"), &json!({})).status, 409);

    // Export: the archive `domicile restore` reads.
    let export = me.get("/api/v1/export").ok();
    assert_eq!(export.header("content-type"), Some("application/x-tar"));
    assert!(export.header("content-disposition").unwrap().contains("domicile-me.tar"));
    let stopped = server.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
    let archive = home.path().join("export.tar");
    std::fs::write(&archive, &export.body).unwrap();
    let other = TestHome::new();
    other.ok(&["restore", archive.to_str().unwrap(), "--as", "copy"]);
    assert_eq!(other.ok(&["--resident", "copy", "--json", "docs", STATEMENT]).json().as_array().unwrap().len(), 18);

    // Uninstall over HTTP after a restart: the store was flushed and released.
    let server = Server::start(&home);
    let me = Client::signed_in(&server.url, "me", &password);
    me.delete(&format!("/api/v1/apps/{DASHBOARD}")).ok();
    assert!(me.get("/api/v1/apps").ok().json().as_array().unwrap().iter().all(|a| a["id"] != DASHBOARD));
}

#[test]
fn sessions_are_http_only_strict_cookies_and_changes_need_the_csrf_token() {
    let (home, password) = home_and_password();
    let server = Server::start(&home);
    let mut me = Client::new(&server.url);

    assert_eq!(me.get("/api/v1/apps").status, 401);
    let wrong = me.sign_in("me", "not the password");
    let unknown = me.sign_in("nobody", "not the password");
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.text(), unknown.text(), "a wrong name and a wrong password look the same");

    let signed = me.sign_in("me", &password).ok();
    let cookie = signed.header("set-cookie").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(me.get("/api/v1/apps").ok().json().as_array().unwrap().is_empty());

    // A page of another site can make the browser send the cookie, but not the token.
    let forged = Client { csrf: None, ..me.clone() };
    let reply = forged.post("/api/v1/apps", &json!({ "app": DASHBOARD, "grants": ["all"] }));
    assert_eq!(reply.status, 403);
    assert!(reply.error().contains("X-CSRF-Token"), "{}", reply.error());
    let wrong_token = Client { csrf: Some("0".repeat(64)), ..me.clone() };
    assert_eq!(wrong_token.post("/api/v1/apps", &json!({ "app": DASHBOARD })).status, 403);
    assert!(me.get("/api/v1/apps").ok().json().as_array().unwrap().is_empty(), "nothing was installed");

    // Scripts use API tokens instead, without cookies or CSRF.
    let token = me.post("/api/v1/tokens", &json!({ "label": "backup" })).ok().json();
    let secret = token["token"].as_str().unwrap();
    let script = Client::new(&server.url).with_bearer(secret);
    install(&script, LEARNING_IMPORTER, &["all"]);
    assert_eq!(me.get("/api/v1/tokens").ok().json()[0]["label"], "backup");
    assert!(!me.get("/api/v1/tokens").ok().text().contains(secret), "the secret is shown once");
    me.delete(&format!("/api/v1/tokens/{}", token["id"].as_str().unwrap())).ok();
    assert_eq!(script.get("/api/v1/apps").status, 401);

    // Signing out ends the session.
    me.delete("/api/v1/session").ok();
    assert_eq!(me.get("/api/v1/apps").status, 401);

    // Guessing is throttled per name, whether the name exists or not.
    let mut guesser = Client::new(&server.url);
    for name in ["me", "ghost"] {
        for _ in 0..5 {
            assert_eq!(guesser.sign_in(name, "guess-guess-guess").status, 401);
        }
        let throttled = guesser.sign_in(name, "guess-guess-guess");
        assert_eq!(throttled.status, 429, "{}", throttled.text());
        assert!(throttled.header("retry-after").is_some());
    }
    assert_eq!(guesser.sign_in("me", &password).status, 429, "even the right password waits");
}

#[test]
fn a_resident_cannot_read_run_or_even_detect_another_residents_data() {
    let home = TestHome::new().with_sample_catalogue();
    let ana_password = home.add_resident("ana");
    let bob_password = home.add_resident("bob");
    let server = Server::start(&home);
    let ana = Client::signed_in(&server.url, "ana", &ana_password);
    let bob = Client::signed_in(&server.url, "bob", &bob_password);

    install(&ana, IMPORTER, &["all"]);
    install(&ana, ALLOWANCE, &["all"]);
    upload(&ana, IMPORTER, "week.gpx", read(sample_gpx())).ok();
    let outbox_id = ana.post(&format!("/api/v1/apps/{ALLOWANCE}/run"), &json!({})).ok().json()["output"]["outbox_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trip_id = ana.get("/api/v1/docs/io.domicile.mobility.trip?limit=1").ok().json()["documents"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ana_token =
        ana.post("/api/v1/tokens", &json!({ "label": "ana's" })).ok().json()["token"].as_str().unwrap().to_owned();

    // Bob's view of the home is his own, empty space.
    for path in [
        "/api/v1/apps",
        "/api/v1/doctypes",
        "/api/v1/audit",
        "/api/v1/outbox",
        "/api/v1/notifications",
        "/api/v1/tokens",
    ] {
        assert_eq!(bob.get(path).ok().json(), json!([]), "{path}");
    }
    assert_eq!(bob.get("/api/v1/docs/io.domicile.mobility.trip").ok().json()["documents"], json!([]));
    assert_eq!(bob.get("/api/v1/usage").ok().json()["usage"]["documents"], 0);
    let catalogue = bob.get("/api/v1/catalogue").ok().json();
    assert!(catalogue["apps"].as_array().unwrap().iter().all(|a| a["installed"].is_null()), "{catalogue}");

    // What exists in Ana's space answers Bob exactly as what exists nowhere.
    let probes = [
        (format!("/api/v1/apps/{ALLOWANCE}"), "/api/v1/apps/org.example.never.installed".to_owned(), "GET"),
        (format!("/api/v1/apps/{ALLOWANCE}/run"), "/api/v1/apps/org.example.never.installed/run".to_owned(), "POST"),
        (format!("/api/v1/outbox/{outbox_id}/approve"), "/api/v1/outbox/987654/approve".to_owned(), "POST"),
        (format!("/api/v1/outbox/{outbox_id}/deny"), "/api/v1/outbox/987654/deny".to_owned(), "POST"),
        (
            format!("/api/v1/apps/{ALLOWANCE}/revoke"),
            "/api/v1/apps/org.example.never.installed/revoke".to_owned(),
            "POST",
        ),
        (format!("/api/v1/apps/{ALLOWANCE}"), "/api/v1/apps/org.example.never.installed".to_owned(), "DELETE"),
    ];
    for (existing, nowhere, method) in &probes {
        let body = Some(("application/json", b"{}".to_vec()));
        let a =
            bob.request(method, existing, if *method == "GET" || *method == "DELETE" { None } else { body.clone() });
        let b = bob.request(method, nowhere, if *method == "GET" || *method == "DELETE" { None } else { body });
        assert_eq!(a.status, b.status, "{method} {existing}: {} vs {}", a.text(), b.text());
        let normalise = |r: &common::server::Reply| {
            r.text()
                .replace(ALLOWANCE, "APP")
                .replace("org.example.never.installed", "APP")
                .replace(&outbox_id, "ID")
                .replace("987654", "ID")
        };
        assert_eq!(normalise(&a), normalise(&b), "{method} {existing}");
    }
    let doc = bob.get(&format!("/api/v1/docs/io.domicile.mobility.trip?where=%7B%22_id%22%3A%22{trip_id}%22%7D"));
    assert!(doc.status == 400 || doc.json()["documents"] == json!([]), "{}", doc.text());

    // Ana's token is Ana's; her data and outbox are untouched by Bob's attempts.
    let bob_with_anas_token = Client { bearer: Some(ana_token), ..bob.clone() };
    assert_eq!(
        bob_with_anas_token.get("/api/v1/session").ok().json()["resident"],
        "ana",
        "a token names its owner, whoever sends it"
    );
    assert_eq!(ana.get("/api/v1/outbox").ok().json()[0]["status"]["state"], "pending");
    let export = bob.get("/api/v1/export").ok();
    assert!(!export.text().contains("gpx-2026"), "Bob's export holds none of Ana's trips");
    assert!(ana.get("/api/v1/export").ok().text().contains("gpx-2026"));
}

#[test]
fn the_operator_manages_residents_and_quotas_but_reads_no_resident_data() {
    let home = TestHome::new().with_sample_catalogue();
    let operator_token = home.ok(&["--json", "operator-token"]).json()["token"].as_str().unwrap().to_owned();
    let server = Server::start(&home);
    let operator = Client::new(&server.url).with_bearer(&operator_token);

    assert_eq!(Client::new(&server.url).get("/api/v1/admin/residents").status, 401);
    assert_eq!(Client::new(&server.url).with_bearer("dmo_wrong").get("/api/v1/admin/residents").status, 401);

    let created = operator.post("/api/v1/admin/residents", &json!({ "name": "carla" })).ok().json();
    let password = created["password"].as_str().unwrap().to_owned();
    assert_eq!(operator.post("/api/v1/admin/residents", &json!({ "name": "carla" })).status, 409);
    assert_eq!(operator.post("/api/v1/admin/residents", &json!({ "name": "../x" })).status, 400);
    assert_eq!(operator.post("/api/v1/admin/residents", &json!({ "name": "dan", "password": "short" })).status, 400);
    let carla = Client::signed_in(&server.url, "carla", &password);
    install(&carla, IMPORTER, &["all"]);
    upload(&carla, IMPORTER, "week.gpx", read(sample_gpx())).ok();

    // Usage figures, no content.
    let residents = operator.get("/api/v1/admin/residents").ok();
    let list = residents.json();
    let row = list.as_array().unwrap().iter().find(|r| r["name"] == "carla").unwrap().clone();
    assert_eq!(row["usage"]["documents"], 14);
    assert_eq!(row["apps"], 1);
    assert!(!residents.text().contains("gpx-2026") && !residents.text().contains("bike"), "{}", residents.text());

    // The operator's token opens no resident endpoint, and there is no admin route to documents or the audit.
    for path in
        ["/api/v1/apps", "/api/v1/docs/io.domicile.mobility.trip", "/api/v1/audit", "/api/v1/export", "/api/v1/outbox"]
    {
        assert_eq!(operator.get(path).status, 401, "{path}");
    }
    for path in [
        "/api/v1/admin/residents/carla/docs",
        "/api/v1/admin/residents/carla/audit",
        "/api/v1/admin/residents/carla/export",
    ] {
        assert_eq!(operator.get(path).status, 404, "{path}");
    }

    // Quotas hold: an import beyond the quota commits nothing.
    let quota = operator.put("/api/v1/admin/residents/carla/quota", &json!({ "max_documents": 20 })).ok().json();
    assert_eq!(quota["quota"]["max_documents"], 20);
    install(&carla, "io.domicile.sample.bank-importer", &["all"]);
    let over = upload(&carla, "io.domicile.sample.bank-importer", "bank.ofx", read(sample_data("bank-2026-02.ofx")));
    assert!(over.status == 409 || over.status == 422, "{}", over.text());
    assert!(over.error().contains("quota"), "{}", over.error());
    assert_eq!(carla.get("/api/v1/usage").ok().json()["usage"]["documents"], 14);

    // Disabling ends sessions at once; enabling lets the resident back in.
    operator.post("/api/v1/admin/residents/carla/disable", &json!({})).ok();
    assert_eq!(carla.get("/api/v1/apps").status, 401);
    assert_eq!(Client::new(&server.url).sign_in("carla", &password).status, 401);
    operator.post("/api/v1/admin/residents/carla/enable", &json!({})).ok();
    let carla = Client::signed_in(&server.url, "carla", &password);
    assert_eq!(carla.get("/api/v1/apps").ok().json().as_array().unwrap().len(), 2);

    // A reset password replaces the old one.
    let reset = operator.post("/api/v1/admin/residents/carla/password", &json!({})).ok().json();
    assert_eq!(carla.get("/api/v1/apps").status, 401, "sessions end with a reset");
    assert_eq!(Client::new(&server.url).sign_in("carla", &password).status, 401);
    Client::signed_in(&server.url, "carla", reset["password"].as_str().unwrap());
    assert_eq!(operator.post("/api/v1/admin/residents/nobody/disable", &json!({})).status, 404);
}

/// The cpu-hog test guest, allowed `cpu_ms` of CPU, signed by a new key the home trusts.
fn install_long_hog(home: &TestHome, resident: &str, cpu_ms: u64) {
    let keys = tempfile::tempdir().unwrap();
    let publisher = Keys::generate(home, keys.path(), "hog");
    home.ok(&["trust", "add", &publisher.public()]);
    let manifest = std::fs::read_to_string(repo().join("tests/fixtures/manifests/cpu-hog.toml"))
        .unwrap()
        .replace("cpu-ms = 300", &format!("cpu-ms = {cpu_ms}\nwall-ms = {}", cpu_ms * 4));
    let package = home.path().join("hog.dpkg");
    pack(home, &manifest, &component_of(&fixture_package("cpu-hog")), &publisher, &package);
    home.ok(&["--resident", resident, "install", package.to_str().unwrap(), "--grant", "all"]);
}

/// Waits until the server runs `n` app invocations (a liveness guard of 60 s).
fn wait_running(server: &Server, n: u32) {
    let started = std::time::Instant::now();
    let wanted = format!("domicile_app_invocations_running {n}");
    while !Client::new(&server.url).get("/metrics").text().contains(&wanted) {
        assert!(started.elapsed().as_secs() < 60, "never saw {wanted}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn one_resident_cannot_starve_the_others_and_requests_are_bounded() {
    let home = TestHome::new().with_sample_catalogue();
    std::fs::write(home.path().join("config.toml"), "[server]\nruns-per-resident = 1\nmax-upload-mib = 1\n").unwrap();
    let (ana_password, bob_password) = (home.add_resident("ana"), home.add_resident("bob"));
    install_long_hog(&home, "ana", 3000);
    let server = Server::start(&home);
    let ana = Client::signed_in(&server.url, "ana", &ana_password);
    let bob = Client::signed_in(&server.url, "bob", &bob_password);
    install(&bob, LEARNING_IMPORTER, &["all"]);

    let hog = {
        let ana = ana.clone();
        std::thread::spawn(move || ana.post(&format!("/api/v1/apps/{CPU_HOG}/run"), &json!({})))
    };
    wait_running(&server, 1);
    let second = ana.post(&format!("/api/v1/apps/{CPU_HOG}/run"), &json!({}));
    assert_eq!(second.status, 429, "{}", second.text());
    assert!(second.error().contains("in progress"), "{}", second.error());
    // Bob is not held up by Ana's run.
    upload(&bob, LEARNING_IMPORTER, "x.json", read(sample_data("xapi-lea-2026.json"))).ok();
    assert!(Client::new(&server.url).get("/healthz").ok().text().starts_with("ok"));

    let hog = hog.join().unwrap();
    assert_eq!(hog.status, 422);
    assert!(hog.error().contains("CPU time limit (3000 ms)"), "{}", hog.error());

    // Uploads over the operator's limit are refused from their announced
    // length, before the body is even read (so a raw request: an HTTP
    // client would still be writing the body when the answer comes).
    let status_line = {
        use std::io::{BufRead, Write};
        let mut stream = std::net::TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
        write!(
            stream,
            "POST /api/v1/apps/{LEARNING_IMPORTER}/import?file=big.json HTTP/1.1\r\nHost: x\r\nCookie: {}\r\nX-CSRF-Token: {}\r\nContent-Length: {}\r\n\r\n",
            bob.cookie.as_ref().unwrap(),
            bob.csrf.as_ref().unwrap(),
            2 * 1024 * 1024
        )
        .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stream).read_line(&mut line).unwrap();
        line
    };
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");

    let metrics = Client::new(&server.url).get("/metrics").ok().text();
    assert!(metrics.contains("domicile_app_runs_total{kind=\"run\",outcome=\"app-failed\"} 1"), "{metrics}");
    assert!(metrics.contains("domicile_app_runs_total{kind=\"import\",outcome=\"ok\"} 1"), "{metrics}");
    assert!(metrics.contains("domicile_http_requests_total{class=\"4xx\"}"), "{metrics}");
    assert!(!metrics.contains("domicile_cluster_"), "a single node has no cluster metrics: {metrics}");
    for personal in ["ana", "bob", CPU_HOG, LEARNING_IMPORTER] {
        assert!(!metrics.contains(personal), "metrics name `{personal}`");
    }
}

#[test]
fn shutdown_lets_runs_in_flight_finish_then_flushes_and_releases_the_home() {
    let (home, password) = home_and_password();
    install_long_hog(&home, "me", 2000);
    let server = Server::start_with_env(&home, &[("DOMICILE_LOG", "info")]);
    let me = Client::signed_in(&server.url, "me", &password);
    install(&me, LEARNING_IMPORTER, &["all"]);
    upload(&me, LEARNING_IMPORTER, "lea.json", read(sample_data("xapi-lea-2026.json"))).ok();

    let run = {
        let me = me.clone();
        std::thread::spawn(move || me.post(&format!("/api/v1/apps/{CPU_HOG}/run"), &json!({})))
    };
    wait_running(&server, 1);
    let stopped = server.stop();
    let answered = run.join().unwrap();
    assert_eq!(answered.status, 422, "the run in flight got its answer: {}", answered.text());
    assert!(answered.error().contains("CPU time limit"), "{}", answered.error());
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert!(stopped.stdout.contains("domicile: stopped"), "{}", stopped.stdout);

    // The home is free again and everything is on disk.
    assert_eq!(home.ok(&["--json", "docs", STATEMENT]).json().as_array().unwrap().len(), 18);
    home.ok(&["audit", "verify"]);

    // The logs name routes, never what the resident sent or has.
    for personal in [password.as_str(), "lea.json", "Léa", "maths", "xapi", "/api/v1/apps/io.domicile"] {
        assert!(!stopped.stderr.contains(personal), "the log contains `{personal}`:\n{}", stopped.stderr);
    }
    assert!(stopped.stderr.contains("route=\"/api/v1/apps/{app}/run\""), "{}", stopped.stderr);
}

#[test]
fn malformed_requests_get_clear_errors_and_the_server_keeps_serving() {
    let (home, password) = home_and_password();
    let server = Server::start(&home);
    let me = Client::signed_in(&server.url, "me", &password);
    install(&me, LEARNING_IMPORTER, &["all"]);

    let cases: Vec<(&str, String, Option<Vec<u8>>)> = vec![
        ("POST", "/api/v1/apps".into(), Some(b"{not json".to_vec())),
        ("POST", "/api/v1/apps".into(), Some(br#"{"app": "../../etc/passwd"}"#.to_vec())),
        (
            "POST",
            "/api/v1/apps".into(),
            Some(br#"{"app": "io.domicile.sample.budget", "grants": ["io.domicile.mobility.trip:read"]}"#.to_vec()),
        ),
        ("POST", "/api/v1/apps".into(), Some(br#"{"app": "io.domicile.sample.budget", "unexpected": 1}"#.to_vec())),
        ("POST", format!("/api/v1/apps/{LEARNING_IMPORTER}/run"), Some(b"{}".to_vec())),
        ("POST", format!("/api/v1/apps/{LEARNING_IMPORTER}/import?file=..%2F..%2Fx"), Some(vec![0xff, 0xfe, 0x00])),
        ("POST", format!("/api/v1/apps/{LEARNING_IMPORTER}/import"), Some(b"[]".to_vec())),
        ("GET", "/api/v1/docs/not a doctype".replace(' ', "%20"), None),
        ("GET", "/api/v1/docs/io.domicile.mobility.trip?sort=-".into(), None),
        ("GET", "/api/v1/audit?since_ms=yesterday".into(), None),
        ("POST", "/api/v1/outbox/not-a-number/approve".into(), Some(b"{}".to_vec())),
        (
            "POST",
            "/api/v1/session".into(),
            Some(format!(r#"{{"name": "{}", "password": "x"}}"#, "n".repeat(100_000)).into_bytes()),
        ),
    ];
    for (method, path, body) in cases {
        let reply = me.request(method, &path, body.map(|b| ("application/json", b)));
        assert!((400..500).contains(&reply.status), "{method} {path}: HTTP {} {}", reply.status, reply.text());
    }
    // The import of garbage reached the importer, which refused it without writing.
    let garbage = upload(&me, LEARNING_IMPORTER, "garbage.json", vec![0xff, 0xfe, 0x00]);
    assert_eq!(garbage.status, 422, "{}", garbage.text());
    assert_eq!(me.get("/api/v1/doctypes").ok().json(), json!([]));
    assert!(Client::new(&server.url).get("/healthz").ok().text().starts_with("ok"));
    assert_eq!(me.get("/api/v1/apps").ok().json().as_array().unwrap().len(), 1);
}

#[test]
fn the_load_test_runs_every_resident_over_http_and_reports_against_in_process() {
    // Tiny sizes: this checks that the load test runs and reports, never how fast anything is.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_domicile"))
        .args(["--json", "bench-server", "--residents", "3", "--runs", "2"])
        .env_remove("DOMICILE_HOME")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["over_http"]["latency"]["samples"], 6, "{report}");
    assert_eq!(report["in_process"]["latency"]["samples"], 6, "{report}");
    assert!(report["http_throughput_ratio"].is_number(), "{report}");
    assert!(report["healthz_under_load"]["p99_ms"].is_number(), "{report}");
    // The CPU of each phase is measured: runs cost CPU, and the clients' share is part of the process's.
    let cpu = &report["cpu"];
    assert!(cpu["in_process_ms_per_run"].as_f64().is_some_and(|ms| ms > 0.0), "{report}");
    let all = cpu["over_http_ms_per_run"].as_f64().unwrap();
    let clients = cpu["over_http_clients_ms_per_run"].as_f64().unwrap();
    assert!(clients > 0.0 && clients <= all + 0.01, "{report}");
}

#[test]
fn a_request_past_the_timeout_is_answered_408_and_its_run_cancelled() {
    let (home, password) = home_and_password();
    std::fs::write(home.path().join("config.toml"), "[server]\nrequest-timeout-s = 1\nsecure-cookies = true\n")
        .unwrap();
    install_long_hog(&home, "me", 5000);
    let server = Server::start(&home);
    let mut me = Client::new(&server.url);
    let signed = me.sign_in("me", &password).ok();
    assert!(signed.header("set-cookie").unwrap().contains("; Secure"), "behind TLS, the cookie says so");

    let late = me.post(&format!("/api/v1/apps/{CPU_HOG}/run"), &json!({}));
    assert_eq!(late.status, 408, "{}", late.text());
    // The cancelled run gave its instance slot back; the server carries on.
    wait_running(&server, 0);
    install(&me, LEARNING_IMPORTER, &["all"]);
    upload(&me, LEARNING_IMPORTER, "lea.json", read(sample_data("xapi-lea-2026.json"))).ok();
    assert_eq!(me.get("/api/v1/usage").ok().json()["usage"]["documents"], 18);
}

/// A figure of /proc/PID/status, in MiB (`VmRSS` now, `VmHWM` the peak).
fn proc_mib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

#[cfg(target_os = "linux")]
#[test]
fn hundreds_of_concurrent_sign_ins_keep_memory_bounded_and_the_server_answering() {
    let home = TestHome::new();
    home.set_password("me");
    // Every test client has the same address: without the per-client cap, the storm reaches the password checks.
    std::fs::write(home.path().join("config.toml"), "[server]\nsign-ins-per-client-per-minute = 0\n").unwrap();
    let server = Server::start(&home);
    let pid = server.pid();
    let idle = proc_mib(pid, "VmRSS");
    let clients = 300;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients + 1));
    let storm: Vec<_> = (0..clients)
        .map(|i| {
            let (url, barrier) = (server.url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                Client::new(&url).sign_in(&format!("visitor{i}"), "not-a-password-at-all").status
            })
        })
        .collect();
    barrier.wait();
    // The server keeps answering while the storm goes on.
    let health = Client::new(&server.url).get("/healthz").status;
    let statuses: Vec<u16> = storm.into_iter().map(|t| t.join().unwrap()).collect();
    let peak = proc_mib(pid, "VmHWM");
    let after = proc_mib(pid, "VmRSS");
    let (refused, throttled) =
        (statuses.iter().filter(|&&s| s == 401).count(), statuses.iter().filter(|&&s| s == 429).count());
    eprintln!(
        "{clients} concurrent sign-ins: {refused} refused (401), {throttled} asked to retry (429); RSS idle {idle} MiB, peak {peak} MiB, after {after} MiB"
    );
    assert_eq!(health, 200);
    assert_eq!(refused + throttled, clients, "every sign-in got 401 or 429: {statuses:?}");
    // The unbounded server reached 8.8 GB with this load. With two checks at
    // once it still peaked at 511-662 MiB and stayed there: glibc kept the
    // freed argon2 blocks (19 MiB each) in its heaps once its mmap threshold
    // had grown. With the threshold fixed, one run measured a 90 MiB peak
    // and 52 MiB after (idle 28 MiB). The bounds leave room for slower machines.
    assert!(peak < 256, "peak RSS {peak} MiB (idle {idle} MiB)");
    // The hashes' memory goes back to the system (it stayed at the peak before mallopt).
    assert!(after < idle + 128, "RSS after the storm {after} MiB (idle {idle} MiB, peak {peak} MiB)");
    // And a real sign-in works once the storm is over.
    assert_eq!(Client::new(&server.url).sign_in("nobody", "x").status, 401);
}

/// Sends `POST path` with a body of `length` bytes streamed from a small
/// buffer (60 uploads of 63 MiB would otherwise take 3.7 GB in the test),
/// and returns the answer's status, if the server answered before it
/// closed the connection on a body it did not read.
fn stream_upload(url: &str, path: &str, token: &str, length: usize) -> Option<u16> {
    use std::io::{BufRead, Write};
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(120))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {token}\r\ncontent-type: application/octet-stream\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).ok()?;
    let chunk = vec![b' '; 1024 * 1024];
    let mut sent = 0;
    while sent < length {
        let n = chunk.len().min(length - sent);
        // A server that answered without reading the body closes the
        // connection: the rest of the upload is not sent.
        if stream.write_all(&chunk[..n]).is_err() {
            break;
        }
        sent += n;
    }
    let mut status = String::new();
    std::io::BufReader::new(stream).read_line(&mut status).ok()?;
    status.split_whitespace().nth(1)?.parse().ok()
}

/// One resident's 60 concurrent uploads of 63 MiB: each is admitted by
/// the resident's allowance of heavy work before its body is read, so
/// those past it get 429 (with Retry-After) and cost the server nothing;
/// its memory stays within 300 MiB of idle (it rose by 2 GB when every
/// body was read first).
#[cfg(target_os = "linux")]
#[test]
fn a_residents_concurrent_uploads_are_admitted_before_their_bodies_are_read() {
    let (home, password) = home_and_password();
    let server = Server::start(&home);
    let mut me = Client::new(&server.url);
    me.sign_in("me", &password).ok();
    install(&me, LEARNING_IMPORTER, &["all"]);
    let token =
        me.post("/api/v1/tokens", &json!({ "label": "uploads" })).ok().json()["token"].as_str().unwrap().to_owned();
    let pid = server.pid();
    let idle = proc_mib(pid, "VmRSS");
    let uploads = 60;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(uploads));
    let path = format!("/api/v1/apps/{LEARNING_IMPORTER}/import?file=big.json");
    let statuses: Vec<Option<u16>> = (0..uploads)
        .map(|_| {
            let (url, token, path, barrier) = (server.url.clone(), token.clone(), path.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                stream_upload(&url, &path, &token, 63 * 1024 * 1024)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let peak = proc_mib(pid, "VmHWM");
    let count = |status: u16| statuses.iter().filter(|s| **s == Some(status)).count();
    let unanswered = statuses.iter().filter(|s| s.is_none()).count();
    eprintln!(
        "{uploads} concurrent uploads of 63 MiB: {} asked to retry (429), {} answered otherwise, {} closed unanswered; RSS idle {idle} MiB, peak {peak} MiB",
        count(429),
        statuses.iter().filter(|s| s.is_some_and(|s| s != 429)).count(),
        unanswered
    );
    // Those past the allowance are answered 429 at once; a client still
    // sending a body the server will not read may see the connection
    // closed before it reads that answer.
    assert!(count(429) + unanswered > 0, "some uploads were past the allowance: {statuses:?}");
    assert!(statuses.iter().all(|s| s.is_none_or(|s| s == 429 || (400..500).contains(&s))), "{statuses:?}");
    assert!(peak < idle + 300, "peak RSS {peak} MiB, idle {idle} MiB");
    // The server carries on, and the resident's next upload is admitted.
    assert_eq!(Client::new(&server.url).get("/healthz").status, 200);
    let next = upload(&me, LEARNING_IMPORTER, "lea.json", read(sample_data("xapi-lea-2026.json")));
    assert_eq!(next.status, 200, "{}", next.text());
}

#[test]
fn one_client_address_gets_thirty_sign_in_attempts_a_minute() {
    let home = TestHome::new();
    let password = home.set_password("me");
    let server = Server::start(&home);
    let statuses: Vec<u16> =
        (0..32).map(|i| Client::new(&server.url).sign_in(&format!("guess{i}"), "wrong-password-123").status).collect();
    assert!(statuses[..30].iter().all(|&s| s == 401), "{statuses:?}");
    let refused = Client::new(&server.url).sign_in("me", &password);
    assert_eq!(refused.status, 429, "even the right password waits: the address spent its attempts");
    assert!(refused.header("retry-after").is_some());
    assert!(refused.error().contains("too many sign-in attempts from your address"), "{}", refused.error());
    assert_eq!(Client::new(&server.url).get("/healthz").status, 200);
}

/// A FIFO named where a command reads a file: every such command refuses
/// it at once (it would wait for a writer forever), alone and through the
/// control socket of a running server, whose threads stay free.
#[test]
fn a_named_pipe_given_for_a_file_is_refused_at_once_alone_and_through_the_server() {
    let home = TestHome::new();
    let fifo = home.path().join("not-a-file");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let fifo = fifo.to_str().unwrap();
    home.ok(&["install", sample_package("gpx-importer").to_str().unwrap(), "--grant", "all"]);
    let manifest = repo().join("manifests/budget.toml");
    let commands: Vec<Vec<&str>> = vec![
        vec!["import", IMPORTER, fifo],
        vec!["install", fifo],
        vec!["verify", fifo],
        vec!["restore", fifo],
        vec!["trust", "add", fifo, "--name", "pipe"],
        vec![
            "pack",
            "--manifest",
            manifest.to_str().unwrap(),
            "--component",
            fifo,
            "--key",
            fifo,
            "--out",
            "/dev/null",
        ],
    ];
    let refused = |run: Run, args: &[&str]| {
        assert!(!run.ok, "{args:?} accepted a FIFO");
        let said = run.stderr.contains("named pipe") || run.stderr.contains("not a regular file");
        assert!(said, "{args:?}: {}", run.stderr);
    };
    for args in &commands {
        refused(home.run(args), args);
    }
    let server = Server::start(&home);
    for _ in 0..3 {
        for args in &commands[..4] {
            refused(home.run(args), args);
        }
    }
    // Every command thread of the server came back: it still answers.
    assert!(home.ok(&["--json", "apps"]).stdout.contains(IMPORTER));
    drop(server);
}

/// A home is its owner's alone whatever the umask: folders 0700, files
/// 0600. An existing home with looser modes is tightened when opened,
/// and the command says so once.
#[test]
fn a_home_is_readable_by_its_owner_alone_and_a_loose_one_is_tightened_once() {
    use std::os::unix::fs::PermissionsExt;
    let home = TestHome::new();
    home.set_password("me");
    home.ok(&["install", sample_package("gpx-importer").to_str().unwrap(), "--grant", "all"]);
    let loose = |dir: &std::path::Path| -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(path) = stack.pop() {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.permissions().mode() & 0o077 != 0 {
                found.push(format!("{} {:o}", path.display(), meta.permissions().mode()));
            }
            if meta.is_dir() {
                stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            }
        }
        found
    };
    // The test runs under the usual umask 022: nothing of the home shows it.
    assert_eq!(loose(home.path()), Vec::<String>::new());
    assert!(home.path().join("accounts.json").exists());

    assert!(Command::new("chmod").args(["-R", "go+rX"]).arg(home.path()).status().unwrap().success());
    assert!(!loose(home.path()).is_empty());
    let first = home.ok(&["apps"]);
    assert!(first.stderr.contains("readable by other users"), "{}", first.stderr);
    assert_eq!(loose(home.path()), Vec::<String>::new());
    let second = home.ok(&["apps"]);
    assert!(!second.stderr.contains("readable"), "said once: {}", second.stderr);
}

/// `domicile` commands on a home that `serve` holds reach the server over
/// the home's control socket and behave as they do without a server: the
/// same output, stdin streamed, relative paths resolved, the same errors.
#[test]
fn cli_commands_work_beside_a_running_server() {
    let home = TestHome::new();
    home.ok(&["install", sample_package("gpx-importer").to_str().unwrap(), "--grant", "all"]);
    home.ok(&["put", TRIP, TRIP_DOC]);
    let docs_alone = home.ok(&["--json", "docs", TRIP]).stdout;
    let error_alone = home.run(&["--resident", "nobody", "apps"]).one_line_error().to_owned();
    let server = Server::start(&home);
    assert!(home.path().join("run/control.sock").exists());

    // The operator adds a resident from the shell; the running server
    // knows their password at once.
    let ada_password = home.add_resident("ada");
    server.client().sign_in("ada", &ada_password).ok();
    // A password from stdin, through the socket.
    let mut command = home.command(&["resident", "password", "me", "--password-stdin"]);
    let mut child = command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"a-password-for-me\n").unwrap();
    }
    assert!(child.wait_with_output().unwrap().status.success());
    let me = Client::signed_in(&server.url, "me", "a-password-for-me");

    // An import with a path relative to the client's directory.
    let data = sample_gpx();
    let imported = home
        .command(&["--resident", "me", "import", IMPORTER, data.file_name().unwrap().to_str().unwrap()])
        .current_dir(data.parent().unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&imported.stdout);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    assert!(stdout.starts_with("imported week-around-nantes.gpx with io.domicile.sample.gpx-importer: "), "{stdout}");
    let over_http = me.get(&format!("/api/v1/docs/{TRIP}?limit=100")).ok().json();
    assert_eq!(over_http["documents"].as_array().unwrap().len(), 15, "the server sees what the CLI imported");

    // Acknowledged lines stream back as each write is on disk.
    let mut put = home.command(&["--resident", "me", "put", TRIP, "--jsonl"]);
    let mut child = put.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for day in 20..23 {
            let body = TRIP_DOC.replace("2026-03-02", &format!("2026-03-{day}"));
            writeln!(stdin, r#"{{"id": "t{day}", "body": {body}}}"#).unwrap();
        }
    }
    let acks = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(acks, "ok t20\nok t21\nok t22\n");

    // An export written where the client said.
    let out = home.path().join("beside.tar");
    home.ok(&["--resident", "me", "export", "--out", out.to_str().unwrap()]);
    assert!(std::fs::metadata(&out).unwrap().len() > 0);
    // The same errors, on one line, with a failing status.
    assert_eq!(home.run(&["--resident", "nobody", "apps"]).one_line_error(), error_alone);
    let again = home.run(&["serve", "--addr", "127.0.0.1:0"]).one_line_error().to_owned();
    assert!(again.contains("already served"), "{again}");
    let docs_beside = home.ok(&["--json", "--resident", "me", "docs", TRIP]).stdout;

    let stopped = server.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert!(!home.path().join("run/control.sock").exists(), "the socket goes with the server");
    // Same output as without a server, for the same data.
    assert_eq!(docs_beside, home.ok(&["--json", "--resident", "me", "docs", TRIP]).stdout);
    assert_ne!(docs_alone, docs_beside, "(the import and the puts changed the data)");
    assert_eq!(home.ok(&["resident", "list"]).stdout, "ada\nme\n");
}

/// Where each operation of the service layer is reached: a CLI command and
/// an HTTP route. No wildcard: a new operation does not compile here until
/// both front-ends are named, and the test below checks both really answer.
fn front_ends(op: Operation) -> (Vec<&'static str>, &'static str, &'static str) {
    use Operation as O;
    match op {
        O::AddResident => (vec!["resident", "add", "zoe"], "POST", "/api/v1/admin/residents"),
        O::RemoveResident => {
            (vec!["resident", "remove", "nobody", "--yes"], "DELETE", "/api/v1/admin/residents/nobody")
        }
        O::SetPassword => (vec!["resident", "password", "zoe"], "POST", "/api/v1/admin/residents/zoe/password"),
        O::SetSignIn => (vec!["resident", "disable", "zoe"], "POST", "/api/v1/admin/residents/zoe/disable"),
        O::SetQuota => (vec!["quota", "--max-documents", "1000"], "PUT", "/api/v1/admin/residents/me/quota"),
        O::TrustKey => (vec!["trust", "add", "ab"], "POST", "/api/v1/admin/trust"),
        O::RevokeKey => (vec!["trust", "revoke", "ab"], "POST", "/api/v1/admin/trust/ab/revoke"),
        O::AddCatalogueSource => (vec!["catalogue", "add-source", "/nonexistent"], "POST", "/api/v1/admin/catalogues"),
        O::AddCampaign => (vec!["campaign", "add", "/nonexistent.json"], "POST", "/api/v1/admin/campaigns"),
        O::ShowCampaignAttester => (vec!["campaign", "attester"], "GET", "/api/v1/admin/campaign-attester"),
        O::Restore => (vec!["restore", "/nonexistent.tar"], "POST", "/api/v1/admin/restore"),
        O::NewOperatorToken => (vec!["operator-token"], "POST", "/api/v1/admin/operator-token"),
        O::Install => (vec!["install", "org.example.none"], "POST", "/api/v1/apps"),
        O::Update => (vec!["update", "org.example.none"], "POST", "/api/v1/apps/org.example.none/update"),
        O::Grant => (vec!["grant", "org.example.none", "all"], "POST", "/api/v1/apps/org.example.none/grants"),
        O::Revoke => (vec!["revoke", "org.example.none"], "POST", "/api/v1/apps/org.example.none/revoke"),
        O::Uninstall => (vec!["uninstall", "org.example.none"], "DELETE", "/api/v1/apps/org.example.none"),
        O::KeepHeldApp => (vec!["enable", "org.example.none"], "POST", "/api/v1/apps/org.example.none/enable"),
        O::Run => (vec!["run", "org.example.none"], "POST", "/api/v1/apps/org.example.none/run"),
        O::Import => {
            (vec!["import", "org.example.none", "/nonexistent"], "POST", "/api/v1/apps/org.example.none/import?file=x")
        }
        O::PutDocument => (vec!["put", "org.example.note", "{}"], "POST", "/api/v1/docs/org.example.note"),
        O::DeleteDocument => (vec!["delete", "org.example.note", "n1"], "DELETE", "/api/v1/docs/org.example.note/n1"),
        O::ApproveOutbox => (vec!["approve", "999"], "POST", "/api/v1/outbox/999/approve"),
        O::DenyOutbox => (vec!["deny", "999"], "POST", "/api/v1/outbox/999/deny"),
        O::JoinCampaign => (vec!["campaign", "join", "fr.none"], "POST", "/api/v1/campaigns/fr.none/join"),
        O::LeaveCampaign => (vec!["campaign", "leave", "fr.none"], "POST", "/api/v1/campaigns/fr.none/leave"),
        O::FetchCampaignResult => (vec!["campaign", "result", "fr.none"], "POST", "/api/v1/campaigns/fr.none/result"),
        O::Export => (vec!["export", "--out", "/nonexistent/x.tar"], "GET", "/api/v1/export"),
        O::CreateToken => (vec!["token", "create", "--label", "ci"], "POST", "/api/v1/tokens"),
        O::RevokeToken => (vec!["token", "revoke", "nope"], "DELETE", "/api/v1/tokens/nope"),
    }
}

/// Every operation the service layer offers is reachable from the CLI
/// (the command parses and reaches the home: clap's usage errors exit with
/// 2) and from the HTTP API (a route answers, not the web UI's fallback),
/// while the server runs.
#[test]
fn every_operation_is_reachable_from_both_the_cli_and_the_api() {
    let home = TestHome::new();
    let password = home.set_password("me");
    let server = Server::start(&home);
    let me = Client::signed_in(&server.url, "me", &password);
    for &op in Operation::ALL {
        let (argv, method, path) = front_ends(op);
        let mut args = vec!["--resident", "me"];
        args.extend(argv.iter().copied());
        let cli = home.command(&args).output().unwrap();
        assert_ne!(
            cli.status.code(),
            Some(2),
            "{op:?}: `domicile {}` is not a command: {}",
            argv.join(" "),
            String::from_utf8_lossy(&cli.stderr)
        );
        // A fresh operator token each time: one of the operations makes a new one.
        let client = if path.starts_with("/api/v1/admin") {
            let token = home.ok(&["--json", "operator-token"]).json()["token"].as_str().unwrap().to_owned();
            server.client().with_bearer(&token)
        } else {
            me.clone()
        };
        let body = Some(("application/json", b"{}".to_vec()));
        let reply = client.request(method, path, body);
        // The API says what is not found in JSON; a route that does not
        // exist falls through to the web UI's plain `not found` (or is a 405).
        let unrouted = reply.status == 405 || (reply.status == 404 && reply.text() == "not found\n");
        assert!(!unrouted, "{op:?}: no route {method} {path} (HTTP {})", reply.status);
        assert_ne!(reply.status, 401, "{op:?}: {method} {path} was not authorised: {}", reply.text());
    }
}

/// The operations the API gained with the service layer, doing what the
/// CLI's do: a resident writes and deletes their own documents; the
/// operator restores an archive, trusts and revokes a key (holding the apps
/// it signed), pages through and removes residents, and replaces their token.
#[test]
fn the_api_writes_documents_restores_archives_and_revokes_keys_as_the_cli_does() {
    let home = TestHome::new();
    let password = home.set_password("me");
    home.ok(&["install", sample_package("mobility-footprint").to_str().unwrap(), "--grant", "all"]);
    let server = Server::start(&home);
    let me = Client::signed_in(&server.url, "me", &password);
    let token = home.ok(&["--json", "operator-token"]).json()["token"].as_str().unwrap().to_owned();
    let admin = server.client().with_bearer(&token);

    // A resident's own document, checked against its schema.
    let written =
        me.post(&format!("/api/v1/docs/{TRIP}"), &json!({ "body": serde_json::from_str::<Value>(TRIP_DOC).unwrap() }));
    let id = written.ok().json()["id"].as_str().unwrap().to_owned();
    let bad = me.post(&format!("/api/v1/docs/{TRIP}"), &json!({ "body": { "mode": "teleport" } }));
    assert_eq!(bad.status, 400, "{}", bad.text());
    let docs = home.ok(&["--json", "docs", TRIP]).json();
    assert_eq!(docs[0]["meta"]["created_by"]["kind"], "resident", "{docs}");
    me.delete(&format!("/api/v1/docs/{TRIP}/{id}")).ok();
    assert!(home.docs(TRIP).is_empty());
    assert_eq!(me.delete(&format!("/api/v1/docs/{TRIP}/{id}")).status, 404);
    me.post(
        &format!("/api/v1/docs/{TRIP}"),
        &json!({ "id": "kept", "body": serde_json::from_str::<Value>(TRIP_DOC).unwrap() }),
    )
    .ok();

    // Restore, as `copy`: the same documents and apps.
    let archive = home.path().join("me.tar");
    home.ok(&["export", "--out", archive.to_str().unwrap()]);
    let restored = admin.request(
        "POST",
        "/api/v1/admin/restore?as=copy",
        Some(("application/x-tar", std::fs::read(&archive).unwrap())),
    );
    assert_eq!(restored.ok().json()["resident"], "copy");
    assert_eq!(home.ok(&["--json", "--resident", "copy", "docs", TRIP]).json()[0]["id"], "kept");
    let damaged =
        admin.request("POST", "/api/v1/admin/restore?as=broken", Some(("application/x-tar", b"not a tar".to_vec())));
    assert_eq!(damaged.status, 400, "{}", damaged.text());
    assert_eq!(home.ok(&["resident", "list"]).stdout, "copy\nme\n", "a refused archive leaves nothing");

    // Revoking the sample key holds the apps it signed, in every space.
    let key = std::fs::read_to_string(repo().join("sample-apps/keys/sample-publisher.pub")).unwrap().trim().to_owned();
    let revoked = admin.post(&format!("/api/v1/admin/trust/{key}/revoke"), &json!({})).ok().json();
    let mut held: Vec<String> =
        revoked["held"].as_array().unwrap().iter().map(|h| format!("{}:{}", h["resident"], h["app"])).collect();
    held.sort();
    assert_eq!(held, [format!("\"copy\":\"{FOOTPRINT}\""), format!("\"me\":\"{FOOTPRINT}\"")]);
    assert_eq!(me.post(&format!("/api/v1/apps/{FOOTPRINT}/run"), &json!({})).status, 409);
    let trusted = admin.post("/api/v1/admin/trust", &json!({ "key": key, "name": "again" })).ok().json();
    assert_eq!(trusted["revoked_at_ms"], Value::Null);

    // Removing a resident deletes their space's directory and account.
    let copy_dir = home.path().join("spaces/residents/copy");
    assert!(copy_dir.is_dir());
    let page = admin.get("/api/v1/admin/residents?limit=1").ok().json();
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(admin.get("/api/v1/admin/residents?after=copy").ok().json()[0]["name"], "me");
    admin.delete("/api/v1/admin/residents/copy").ok();
    assert!(!copy_dir.exists(), "their disk is freed");
    assert_eq!(admin.delete("/api/v1/admin/residents/copy").status, 404);
    let refused = home.run(&["resident", "remove", "me"]).one_line_error().to_owned();
    assert!(refused.contains("--yes"), "{refused}");
    assert_eq!(home.ok(&["resident", "list"]).stdout, "me\n");

    // A new operator token: the old one stops working.
    let new = admin.post("/api/v1/admin/operator-token", &json!({})).ok().json()["token"].as_str().unwrap().to_owned();
    assert_eq!(admin.get("/api/v1/admin/residents").status, 401);
    server.client().with_bearer(&new).get("/api/v1/admin/residents").ok();
}

/// While an import runs, its resident sees how far it has got (`GET
/// /api/v1/imports`, which the web UI asks every half second once the file
/// is uploaded): the importer, the file, the documents read so far and
/// whether they are being saved; nothing once it is done. Another resident
/// sees none of it.
#[test]
fn an_import_under_way_says_how_far_it_has_got() {
    const IMPORTER: &str = "io.domicile.sample.energy-importer";
    let home = TestHome::new();
    home.install(&sample_package("energy-importer"), &["all"]);
    let password = home.set_password("me");
    home.ok(&["resident", "add", "ada"]);
    let ada_password = home.set_password("ada");
    let server = Server::start(&home);
    let me = Client::signed_in(&server.url, "me", &password);
    let ada = Client::signed_in(&server.url, "ada", &ada_password);

    // 60,000 half-hourly readings: seconds of work for the importer.
    let curve = load_curve_csv(60_000);
    let uploader = {
        let me = me.clone();
        std::thread::spawn(move || me.upload(&format!("/api/v1/apps/{IMPORTER}/import?file=curve.csv"), curve.into()))
    };
    let mut seen = None;
    while !uploader.is_finished() {
        let under = me.get("/api/v1/imports").ok().json();
        if let Some(import) = under.as_array().unwrap().first().filter(|i| i["documents"].as_u64() > Some(0)) {
            seen = Some(import.clone());
            assert_eq!(ada.get("/api/v1/imports").ok().json(), serde_json::json!([]), "ada sees none of it");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let seen = seen.expect("the import's progress is seen before it ends");
    assert_eq!(seen["app"], IMPORTER, "{seen}");
    assert_eq!(seen["file"], "curve.csv", "{seen}");
    assert!(seen["saving"].is_boolean() && seen["seconds"].is_number(), "{seen}");
    let done = uploader.join().unwrap();
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(me.get("/api/v1/imports").ok().json(), serde_json::json!([]), "nothing under way once done");
}

/// `domicile import` of a large file shows its progress on the terminal,
/// alone on the home and beside a running server (which executes it and
/// sends the line to the client's terminal); with `--json`, or when stderr
/// is not a terminal, nothing is drawn. The terminal is a real one, made
/// by util-linux's `script` (Debian's essential bsdutils).
#[test]
fn an_import_shows_its_progress_on_the_terminal_with_or_without_a_server() {
    const IMPORTER: &str = "io.domicile.sample.energy-importer";
    let home = TestHome::new();
    home.install(&sample_package("energy-importer"), &["all"]);
    let dir = tempfile::tempdir().unwrap();
    let on_a_terminal = |file: &str, json: bool| -> String {
        let path = dir.path().join(file);
        std::fs::write(&path, load_curve_csv(60_000)).unwrap();
        let mut args = vec!["--home".to_owned(), home.path().display().to_string()];
        if json {
            args.push("--json".into());
        }
        args.extend(["import".into(), "--no-triggers".into(), IMPORTER.into(), path.display().to_string()]);
        let line = std::iter::once(env!("CARGO_BIN_EXE_domicile").to_owned())
            .chain(args)
            .map(|a| shlex::try_quote(&a).unwrap().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let output = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("TERM", "xterm")
            .env_remove("DOMICILE_HOME")
            .env_remove("DOMICILE_RESIDENT")
            .env("DOMICILE_ARTIFACT_CACHE", shared_artifact_cache())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{shown}{}", String::from_utf8_lossy(&output.stderr));
        shown
    };
    let alone = on_a_terminal("alone.csv", false);
    assert!(alone.contains("importing alone.csv (") && alone.contains(" documents, "), "{alone}");

    let server = Server::start(&home);
    let beside = on_a_terminal("beside.csv", false);
    assert!(beside.contains("importing beside.csv (") && beside.contains(" documents, "), "{beside}");
    assert!(beside.contains("imported"), "the summary follows: {beside}");
    let quiet = on_a_terminal("quiet.csv", true);
    assert!(!quiet.contains("importing quiet.csv"), "--json draws nothing: {quiet}");
    let piped = home.ok(&["import", "--no-triggers", IMPORTER, dir.path().join("quiet.csv").to_str().unwrap()]);
    assert!(!piped.stderr.contains("importing quiet.csv"), "not a terminal: {}", piped.stderr);
    drop(server);
}
