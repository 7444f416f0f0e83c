//! The web UI in a real browser: Debian's headless Chromium, driven through
//! chromedriver (WebDriver) by fantoccini, against `domicile serve` on
//! 127.0.0.1:0. A resident signs in, installs sample apps from the
//! catalogue with a partial grant, imports a file, runs an app, revokes it,
//! finds the denial in the audit log, and approves an outbox item that a
//! real local server then receives byte for byte. A participant takes part
//! in a campaign of two real aggregators and brings its result home.
//!
//! Needs `chromium` and `chromium-driver` (Debian packages; `.ci/run`
//! installs them). Without them the test is skipped with a message, so the
//! README's test command passes on a machine that has only Rust; under CI
//! (`CI` set) a missing browser fails the test instead.

#[path = "common/aggregators.rs"]
mod aggregators;
mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::server::Server;
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const LEARNING_IMPORTER: &str = "io.domicile.sample.learning-importer";
const DASHBOARD: &str = "io.domicile.sample.learning-dashboard";
const ALLOWANCE: &str = "io.domicile.sample.mobility-allowance";
const STATEMENT: &str = "io.domicile.learning.statement";
const ENERGY_IMPORTER: &str = "io.domicile.sample.energy-importer";
const ENERGY_INSIGHTS: &str = "io.domicile.sample.energy-insights";
const HOSTILE: &str = "org.example.test.hostile";

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// chromedriver on a free port; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// chromedriver started (its tests are ignored where the build found
    /// no Chromium or ChromeDriver: see `needed`).
    fn start() -> Driver {
        let driver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium = chromium();
        let missing: Vec<&str> = [&driver, &chromium]
            .into_iter()
            .filter(|p| !std::path::Path::new(p).exists())
            .map(String::as_str)
            .collect();
        let install = "`apt-get install chromium chromium-driver` (Debian), or set CHROMIUM and CHROMEDRIVER";
        needed(missing.is_empty(), &format!("Chromium or ChromeDriver ({})", missing.join(" and ")), install);
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, url: format!("http://127.0.0.1:{port}") }
    }

    async fn browser(&self, profile: &std::path::Path) -> Client {
        let chromium = chromium();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                // Root in CI: no sandbox. No background traffic: the machine has no network.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--no-first-run", "--disable-quic", "--window-size=1280,2000",
                         format!("--user-data-dir={}", profile.display())],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// An element by id (ids here contain dots, which CSS would read as classes).
fn id(id: &str) -> String {
    format!("[id=\"{id}\"]")
}

/// Waits until the element matching `css` shows `needle` (30 s liveness guard).
async fn wait_text(browser: &Client, css: &str, needle: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(element) = browser.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                if text.contains(needle) {
                    return text;
                }
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            let shown = browser.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
            panic!("`{css}` never showed `{needle}`; the page shows:\n{shown}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click(browser: &Client, css: &str) {
    browser.wait().for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
}

/// Every form control of the page has a label a screen reader announces.
async fn assert_labelled(browser: &Client, page: &str) {
    let unlabelled = browser
        .execute(
            "return [...document.querySelectorAll('main input, main select, main textarea')]
                .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
                .map(e => e.outerHTML);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(unlabelled, json!([]), "unlabelled controls on {page}");
}

/// With DOMICILE_SCREENSHOTS=DIR, saves the page as DIR/NAME.png (to look at the UI).
async fn shot(browser: &Client, name: &str) {
    if let Ok(dir) = std::env::var("DOMICILE_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), browser.screenshot().await.unwrap()).unwrap();
    }
}

/// The JSON output of the run whose result `app`'s card shows (under its
/// view, in a closed "All of the output" section: read from the page).
async fn run_output(browser: &Client, app: &str) -> Value {
    wait_text(browser, &id(&format!("result-{app}")), "Result").await;
    let text = browser
        .execute(
            "return document.querySelector(arguments[0]).textContent;",
            vec![json!(format!("{} pre.output", id(&format!("result-{app}"))))],
        )
        .await
        .unwrap();
    serde_json::from_str(text.as_str().unwrap()).unwrap()
}

async fn sign_in(browser: &Client, url: &str, password: &str) {
    sign_in_as(browser, url, "me", password).await;
}

async fn sign_in_as(browser: &Client, url: &str, name: &str, password: &str) {
    go(browser, &format!("{url}/"), "Sign in").await;
    browser.find(Locator::Css("#sign-in-name")).await.unwrap().send_keys(name).await.unwrap();
    browser.find(Locator::Css("#sign-in-password")).await.unwrap().send_keys(password).await.unwrap();
    click(browser, "#sign-in button[type=submit]").await;
    wait_text(browser, "h1", &format!("Welcome home, {name}")).await;
}

async fn go(browser: &Client, url: &str, heading: &str) {
    browser.goto(url).await.unwrap();
    wait_text(browser, "h1", heading).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_browser,
    ignore = "needs Chromium and ChromeDriver: apt-get install chromium chromium-driver, or set CHROMIUM and CHROMEDRIVER"
)]
async fn a_resident_uses_the_web_ui_from_sign_in_to_an_approved_outbox_item() {
    let driver = Driver::start();
    let home = TestHome::new().with_sample_catalogue();
    let password = home.set_password("me");
    // The mobility allowance, pointed at this test's server: signed by a key the home trusts.
    let platform_server = http_receiver();
    let platform = format!("http://127.0.0.1:{}/forfait-mobilites-durables", platform_server.port);
    let received = platform_server.received;
    let keys = tempfile::tempdir().unwrap();
    let publisher = Keys::generate(&home, keys.path(), "platform");
    home.ok(&["trust", "add", &publisher.public()]);
    let manifest = std::fs::read_to_string(repo().join("manifests/mobility-allowance.toml"))
        .unwrap()
        .replace("https://moncomptemobilite.example/api/forfait-mobilites-durables", &platform);
    let package = home.path().join("allowance.dpkg");
    pack(&home, &manifest, &component_of(&sample_package("mobility-allowance")), &publisher, &package);
    home.install(&package, &["all"]);
    home.install(&sample_package("gpx-importer"), &["all"]);
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);

    let server = Server::start(&home);
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let url = &server.url;

    // Sign in.
    go(&browser, &format!("{url}/"), "Sign in").await;
    assert_labelled(&browser, "sign-in").await;
    browser.find(Locator::Css("#sign-in-name")).await.unwrap().send_keys("me").await.unwrap();
    // From the keyboard: Enter in the password field signs in.
    let field = browser.find(Locator::Css("#sign-in-password")).await.unwrap();
    field.send_keys(&password).await.unwrap();
    field.send_keys("\u{E007}").await.unwrap();
    wait_text(&browser, "h1", "Welcome home, me").await;

    // The home page says what is here, from when to when, and offers the next import.
    let trips: Vec<Value> = home.docs("io.domicile.mobility.trip");
    let dates: std::collections::BTreeSet<&str> = trips.iter().map(|t| t["body"]["date"].as_str().unwrap()).collect();
    let (first, last) = (dates.first().unwrap(), dates.last().unwrap());
    let here = wait_text(&browser, &id("here-io.domicile.mobility.trip"), "documents").await;
    assert!(
        here.contains(&format!("{} documents, from {first} to {last}", trips.len())),
        "{here}: {} trips from {first} to {last}",
        trips.len()
    );
    assert!(here.contains("import the next file with GPX trip importer"), "{here}");
    shot(&browser, "home").await;
    click(&browser, &format!("{} a[href^=\"#/import/\"]", id("here-io.domicile.mobility.trip"))).await;
    wait_text(&browser, "h1", "Import a file").await;
    let chosen = browser.find(Locator::Css("#importer")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(chosen.as_deref(), Some(IMPORTER), "the importer is chosen already");

    // The catalogue says, in words, what each app asks and why.
    go(&browser, &format!("{url}/#/catalogue"), "Catalogue").await;
    let dashboard_card = wait_text(&browser, "main", "Learning").await;
    assert!(dashboard_card.contains("Why: Count the learning records"), "{dashboard_card}");
    shot(&browser, "catalogue").await;

    // Install the importer, then the dashboard with a partial grant: no results.
    click(&browser, &id(&format!("install-{LEARNING_IMPORTER}"))).await;
    wait_text(&browser, "h1", "Install").await;
    assert_labelled(&browser, "the consent screen").await;
    shot(&browser, "consent").await;
    click(&browser, &id(&format!("grant-{STATEMENT}-write"))).await;
    click(&browser, "#install").await;
    wait_text(&browser, "#status", "Installed").await;

    go(&browser, &format!("{url}/#/catalogue"), "Catalogue").await;
    click(&browser, &id(&format!("install-{DASHBOARD}"))).await;
    wait_text(&browser, "h1", "Install").await;
    click(&browser, &id(&format!("grant-{STATEMENT}-read"))).await;
    click(&browser, &id(&format!("field-{STATEMENT}-result"))).await;
    // It can run on its own: said in words, not ticked, so it starts off.
    let consent = wait_text(&browser, "#consent", "It can also run on its own").await;
    assert!(consent.contains("Let it run when io.domicile.learning.statement documents are added"), "{consent}");
    click(&browser, "#install").await;
    let granted = wait_text(&browser, "#status", "Installed").await;
    assert!(granted.contains(&format!("{STATEMENT}:read:date,subject,verb")), "{granted}");

    // Import a file, with the upload's progress shown.
    go(&browser, &format!("{url}/#/import"), "Import a file").await;
    assert_labelled(&browser, "import").await;
    browser.find(Locator::Css("#importer")).await.unwrap().select_by_value(LEARNING_IMPORTER).await.unwrap();
    let file = sample_data("xapi-lea-2026.json");
    browser.find(Locator::Css("#import-file")).await.unwrap().send_keys(file.to_str().unwrap()).await.unwrap();
    click(&browser, "#import-form button[type=submit]").await;
    let summary = wait_text(&browser, "#import-result", "Imported").await;
    assert!(summary.contains("18"), "{summary}");

    // A file with a broken record, asking for its valid records: the broken one is listed.
    go(&browser, &format!("{url}/#/import"), "Import a file").await;
    browser.find(Locator::Css("#importer")).await.unwrap().select_by_value(LEARNING_IMPORTER).await.unwrap();
    let broken = fixture_data("xapi-broken.json");
    browser.find(Locator::Css("#import-file")).await.unwrap().send_keys(broken.to_str().unwrap()).await.unwrap();
    click(&browser, "#import-partial").await;
    click(&browser, "#import-form button[type=submit]").await;
    let left_out = wait_text(&browser, "#import-left-out", "no verb.id").await;
    assert!(left_out.contains("statement 4 (9f1c0004-"), "{left_out}");

    // Run the dashboard: it counts, without the scores it was not granted.
    go(&browser, &format!("{url}/#/apps"), "My apps").await;
    assert_labelled(&browser, "my apps").await;
    // Its trigger is off, as the resident left it; a switch turns it on.
    wait_text(&browser, &id(&format!("trigger-{DASHBOARD}-1")), "Off.").await;
    click(&browser, &id(&format!("switch-{DASHBOARD}-1"))).await;
    wait_text(&browser, "#status", "will again run when io.domicile.learning.statement documents").await;
    wait_text(&browser, &id(&format!("trigger-{DASHBOARD}-1")), "Has not run yet.").await;
    click(&browser, &id(&format!("run-{DASHBOARD}"))).await;
    let report = run_output(&browser, DASHBOARD).await;
    assert_eq!(report["months"]["2026-02"]["statements"], 9, "{report}");
    assert_eq!(report["months"]["2026-02"]["subjects"]["maths"]["avg_score"], Value::Null);
    shot(&browser, "apps").await;

    // Take the grant back; the next run is denied, and the audit log shows it.
    click(&browser, &id(&format!("revoke-{DASHBOARD}-{STATEMENT}"))).await;
    wait_text(&browser, "#status", "can no longer").await;
    click(&browser, &id(&format!("run-{DASHBOARD}"))).await;
    let denied = wait_text(&browser, &id(&format!("result-{DASHBOARD}")), "denied").await;
    assert!(denied.contains(DASHBOARD), "{denied}");
    go(&browser, &format!("{url}/#/activity"), "What apps did").await;
    let audit = wait_text(&browser, "#audit", "DENIED").await;
    shot(&browser, "activity").await;
    assert!(audit.lines().any(|l| l.contains(DASHBOARD) && l.contains("DENIED")), "{audit}");
    click(&browser, "main button.secondary").await;
    wait_text(&browser, "#audit-verdict", "The log is intact").await;

    // What is not granted can be allowed again from My apps.
    go(&browser, &format!("{url}/#/apps"), "My apps").await;
    click(&browser, &id(&format!("allow-{DASHBOARD}-{STATEMENT}-read"))).await;
    wait_text(&browser, "#status", "may now read").await;
    click(&browser, &id(&format!("run-{DASHBOARD}"))).await;
    let report = run_output(&browser, DASHBOARD).await;
    assert!(report["months"]["2026-02"]["subjects"]["maths"]["avg_score"].is_number(), "{report}");

    // The allowance asks to send a declaration; it leaves only once approved, exactly as shown.
    go(&browser, &format!("{url}/#/apps"), "My apps").await;
    let input = browser.find(Locator::Css(&id(&format!("input-{ALLOWANCE}")))).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(&json!({ "destination": platform }).to_string()).await.unwrap();
    click(&browser, &id(&format!("run-{ALLOWANCE}"))).await;
    wait_text(&browser, &id(&format!("result-{ALLOWANCE}")), "Nothing was sent").await;
    assert!(received.try_recv().is_err(), "nothing leaves by running the app");
    go(&browser, &format!("{url}/#/outbox"), "Outbox").await;
    let shown = wait_text(&browser, ".payload", "bike_days").await;
    wait_text(&browser, ".outbox-status", "Waiting for your decision").await;
    shot(&browser, "outbox").await;
    click(&browser, "[id^=approve-]").await;
    wait_text(&browser, ".outbox-status", "Sent").await;
    let (_, _, body) = received.recv_timeout(Duration::from_secs(30)).expect("the platform received the item");
    let body = String::from_utf8(body).unwrap();
    assert_eq!(body, shown, "what was sent is byte for byte what the page showed");

    // A large file: once uploaded, the page says how far the importer has
    // got while it works (60,000 half-hourly readings of an energy meter,
    // with the energy importer installed beside the server).
    home.install(&sample_package("energy-importer"), &["all"]);
    let large = tempfile::tempdir().unwrap();
    let curve = load_curve_csv(60_000);
    let file = large.path().join("load-curve.csv");
    std::fs::write(&file, curve).unwrap();
    go(&browser, &format!("{url}/#/import"), "Import a file").await;
    let energy_importer = "io.domicile.sample.energy-importer";
    browser.find(Locator::Css("#importer")).await.unwrap().select_by_value(energy_importer).await.unwrap();
    browser.find(Locator::Css("#import-file")).await.unwrap().send_keys(file.to_str().unwrap()).await.unwrap();
    click(&browser, "#import-form button[type=submit]").await;
    let status = wait_text(&browser, "#import-status", "documents").await;
    assert!(status.contains("The importer has read") || status.contains("Saving"), "{status}");
    wait_text(&browser, "#import-result", "Imported").await;

    // Export is a plain download link; signing out ends the session.
    go(&browser, &format!("{url}/#/export"), "Export").await;
    let href = browser.find(Locator::Css("#export-link")).await.unwrap().attr("href").await.unwrap();
    assert_eq!(href.as_deref(), Some("/api/v1/export"));
    click(&browser, "#sign-out").await;
    wait_text(&browser, "h1", "Sign in").await;
    browser.goto(&format!("{url}/#/apps")).await.unwrap();
    wait_text(&browser, "h1", "Sign in").await;
    browser.close().await.unwrap();
}

/// A service's view drawn by the page from a real run: the chart of energy
/// per day has one bar per day of the data in its window, each bar says its
/// day and figure, the chart is an image with a title and a description and
/// its figures are a table too. Views the host refuses (markup, a link,
/// 5,000 bars, nesting 10,000 deep) show as an error, run no script, and
/// leave the page working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_browser,
    ignore = "needs Chromium and ChromeDriver: apt-get install chromium chromium-driver, or set CHROMIUM and CHROMEDRIVER"
)]
async fn a_view_is_drawn_as_an_accessible_chart_and_a_hostile_view_is_refused() {
    let driver = Driver::start();
    let home = TestHome::new().with_sample_catalogue();
    let password = home.set_password("me");
    home.install(&sample_package("energy-importer"), &["all"]);
    home.install(&sample_package("energy-insights"), &["all"]);
    home.install(&fixture_package("hostile"), &["all"]);
    for file in ["enedis-load-curve-2026-03.csv", "enedis-daily-index-2025-2026.csv"] {
        home.ok(&["import", ENERGY_IMPORTER, sample_data(file).to_str().unwrap()]);
    }
    let server = Server::start(&home);
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let url = &server.url;
    sign_in(&browser, url, &password).await;

    go(&browser, &format!("{url}/#/apps"), "My apps").await;
    click(&browser, &id(&format!("run-{ENERGY_INSIGHTS}"))).await;
    let report = run_output(&browser, ENERGY_INSIGHTS).await;
    let drawn = browser
        .execute(
            "const figure = [...document.querySelectorAll(arguments[0] + ' figure.view-chart')]
                .find(f => f.querySelector('figcaption').textContent.startsWith('Energy per day'));
             const svg = figure.querySelector('svg');
             const named = (ids) => ids.split(' ').map(i => document.getElementById(i).textContent);
             const overlap = (a, b) =>
               a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
             const xs = [...svg.querySelectorAll('text.tick[text-anchor=middle]')].map(t => t.getBBox());
             return {
               bars: [...svg.querySelectorAll('rect.bar')].map(b => b.querySelector('title').textContent),
               role: svg.getAttribute('role'),
               names: named(svg.getAttribute('aria-labelledby')),
               rows: figure.querySelectorAll('details table tbody tr').length,
               scripts: document.querySelectorAll('main script').length,
               ticks: [...svg.querySelectorAll('text.tick[text-anchor=end]:not(.unit)')].map(t => t.textContent),
               unit: svg.querySelector('text.unit').textContent,
               unitOverlaps: [...svg.querySelectorAll('text.tick:not(.unit)')]
                 .some(t => overlap(t.getBBox(), svg.querySelector('text.unit').getBBox())),
               xLabels: xs.length,
               xOverlaps: xs.some((b, i) => i > 0 && overlap(xs[i - 1], b)),
               xCut: xs.some(b => b.x < 0 || b.x + b.width > svg.viewBox.baseVal.width),
               colours: (() => {
                 const probe = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
                 document.body.append(probe);
                 const fills = [...Array(12).keys()].map(s => {
                   const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
                   r.setAttribute('class', 'series-' + s);
                   probe.append(r);
                   return getComputedStyle(r).fill;
                 });
                 probe.remove();
                 return fills;
               })(),
             };",
            vec![json!(id(&format!("result-{ENERGY_INSIGHTS}")))],
        )
        .await
        .unwrap();
    shot(&browser, "view").await;
    // The window: the 92 days to the last day of the data.
    let days = report["days"].as_object().unwrap();
    let last = days.keys().map(|d| day_number(d)).max().unwrap();
    let in_window: Vec<(&String, &Value)> = days.iter().filter(|(d, _)| day_number(d) > last - 92).collect();
    let bars: Vec<&str> = drawn["bars"].as_array().unwrap().iter().map(|b| b.as_str().unwrap()).collect();
    assert_eq!(bars.len(), in_window.len(), "one bar per day of data: {bars:?}");
    assert!(in_window.len() > 10, "the sample data has days in the window");
    for ((day, kwh), bar) in in_window.iter().zip(&bars) {
        let (shown_day, shown) = bar.split_once(": ").unwrap();
        assert_eq!(shown_day, day.as_str());
        let shown: f64 = shown.trim_end_matches(" kWh").replace(',', "").parse().unwrap();
        assert!((shown - kwh.as_f64().unwrap()).abs() < 0.006, "{bar} against {kwh}");
    }
    assert_eq!(drawn["role"], "img");
    assert!(drawn["names"][0].as_str().unwrap().starts_with("Energy per day"), "{drawn}");
    assert!(drawn["names"][1].as_str().unwrap().contains("92 values from"), "{drawn}");
    assert_eq!(drawn["rows"], 92, "the figures as a table, one row per day of the window");
    assert_eq!(drawn["scripts"], 0);
    // Read at a glance: round values on the y axis, from 0 past the
    // highest bar; the unit clear of them; day labels that do not run
    // into each other; a colour of its own for each of 12 series.
    let ticks: Vec<f64> = drawn["ticks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().replace(',', "").parse().unwrap())
        .collect();
    let step = ticks[1] - ticks[0];
    let mantissa = step / 10f64.powf(step.log10().floor());
    assert!([1.0, 2.0, 2.5, 5.0].iter().any(|m| (m - mantissa).abs() < 1e-9), "a round step: {ticks:?}");
    assert!(ticks.windows(2).all(|w| ((w[1] - w[0]) - step).abs() < 1e-9) && ticks[0] == 0.0, "{ticks:?}");
    let highest = in_window.iter().map(|(_, kwh)| kwh.as_f64().unwrap()).fold(0.0, f64::max);
    assert!(ticks[ticks.len() - 1] >= highest && ticks[ticks.len() - 1] - step < highest, "{ticks:?} for {highest}");
    assert_eq!(drawn["unit"], "kWh");
    assert_eq!(drawn["unitOverlaps"], false, "the unit is written clear of the values");
    assert!(drawn["xLabels"].as_u64().unwrap() >= 4, "{drawn}");
    assert_eq!(drawn["xOverlaps"], false, "no day label runs into the next");
    assert_eq!(drawn["xCut"], false, "nor past the chart's edge");
    let colours: std::collections::BTreeSet<&str> =
        drawn["colours"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(colours.len(), 12, "{colours:?}");

    // Hostile views: refused by the host, shown as an error; no script ran.
    for (attack, error) in [
        ("view-script", "contains markup"),
        ("view-link", "contains a link"),
        ("view-huge", "5000 x labels"),
        ("view-deep", "recursion limit"),
    ] {
        let input = browser.find(Locator::Css(&id(&format!("input-{HOSTILE}")))).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(&json!({ "attack": attack }).to_string()).await.unwrap();
        click(&browser, &id(&format!("run-{HOSTILE}"))).await;
        let shown = wait_text(&browser, &id(&format!("result-{HOSTILE}")), "failed").await;
        assert!(shown.contains(error), "{attack}: {shown}");
        assert_ne!(browser.title().await.unwrap(), "owned", "{attack}");
    }
    // The page still works: the chart is there and another run draws again.
    click(&browser, &id(&format!("run-{ENERGY_INSIGHTS}"))).await;
    wait_text(&browser, &id(&format!("result-{ENERGY_INSIGHTS}")), "Energy per month").await;
    browser.close().await.unwrap();
}

/// A campaign of the home, in the browser: listed with who asks and until
/// when, and every term a resident would consent to, the buckets of the
/// answer and the two aggregators among them; taking part without the
/// campaign's app says to install it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_browser,
    ignore = "needs Chromium and ChromeDriver: apt-get install chromium chromium-driver, or set CHROMIUM and CHROMEDRIVER"
)]
async fn a_resident_reads_what_taking_part_in_a_campaign_means() {
    let driver = Driver::start();
    let home = TestHome::new();
    let password = home.set_password("me");
    let out = |name: &str| home.path().join(name).to_str().unwrap().to_owned();
    home.ok(&["keygen", "--out", &out("organiser")]);
    let file = campaign_file(home.path());
    home.ok(&["campaign", "sign", file.to_str().unwrap(), "--key", &out("organiser.key")]);
    home.ok(&["trust", "add", &out("organiser.pub"), "--role", "campaign"]);
    home.ok(&["campaign", "add", file.to_str().unwrap()]);
    let server = Server::start(&home);
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let url = &server.url;
    sign_in(&browser, url, &password).await;

    click(&browser, "a[href=\"#/campaigns\"]").await;
    wait_text(&browser, "main", "Asked by Nantes Métropole").await;
    click(&browser, &id("terms-fr.nantes.energy-2026")).await;
    let terms = wait_text(&browser, "#campaign-terms", "5 buckets").await;
    for term in [
        "below 100, 100 to 200, 200 to 400, 400 to 800, 800 and above",
        "two shares of the answer, each encrypted to one aggregator",
        "Nantes Métropole (https://agregation.nantesmetropole.example) and Observatoire indépendant",
        "Nothing is released below 100 participants",
        "You may add your neighbourhood, a postcode (5 digits, like 44000), which you set yourself",
    ] {
        assert!(terms.contains(term), "{term}:\n{terms}");
    }
    shot(&browser, "campaign").await;
    // Taking part runs the campaign's app, which this resident has not installed: nothing leaves.
    let offered = wait_text(&browser, "#participation", "Taking part runs io.domicile.sample.energy-insights").await;
    assert!(offered.contains("only the two shares of its answer leave"), "{offered}");
    assert!(offered.contains("Your neighbourhood, if you wish to compare with it: your postcode"), "{offered}");
    // The neighbourhood typed goes with the request: a mistyped one is refused before anything runs.
    let neighbourhood = browser.find(Locator::Css("#neighbourhood")).await.unwrap();
    neighbourhood.send_keys("Nantes").await.unwrap();
    click(&browser, "#join-campaign").await;
    wait_text(&browser, "#alert", "is a postcode (5 digits").await;
    neighbourhood.clear().await.unwrap();
    neighbourhood.send_keys("44000").await.unwrap();
    click(&browser, "#join-campaign").await;
    wait_text(&browser, "#alert", "which you have not installed").await;
    browser.close().await.unwrap();
}

/// A campaign's whole life for a participant, in the browser: they take
/// part with their postcode (two other residents of the home join from the
/// CLI), the page says when the result comes; after the deadline and two
/// real aggregators' release, "Bring the result home" checks and keeps it,
/// and the page shows their neighbourhood's figures, labelled, with the
/// average per participant; a resident who did not take part is told the
/// campaign closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_browser,
    ignore = "needs Chromium and ChromeDriver: apt-get install chromium chromium-driver, or set CHROMIUM and CHROMEDRIVER"
)]
async fn a_participant_brings_a_campaign_s_result_home_and_reads_it_in_the_browser() {
    let driver = Driver::start();
    let home = TestHome::new();
    let password = home.set_password("me");
    home.ok(&["resident", "add", "late"]);
    for resident in ["me", "r1", "r2"] {
        if resident != "me" {
            home.ok(&["resident", "add", resident]);
        }
        for app in ["gpx-importer", "data-donation"] {
            home.ok(&["--resident", resident, "install", sample_package(app).to_str().unwrap(), "--grant", "all"]);
        }
        home.ok(&["--resident", resident, "import", IMPORTER, sample_gpx().to_str().unwrap()]);
    }
    let organisations = aggregators::Organisations::new(home.path());
    let leader_port = aggregators::free_port();
    let deadline_ms = domicile_aggregator::now_ms() + 25_000;
    let campaign = organisations.sign(&json!({
        "id": "fr.nantes.semaine-mobilite",
        "organiser": "Nantes Métropole",
        "purpose": "How far residents travel in the survey week",
        "question": {
            "app": "io.domicile.sample.data-donation",
            "computes": "the km you travelled by bike, by car and on foot from 2 to 8 March 2026",
            "unit": "km",
            "input": { "since": "2026-03-02", "until": "2026-03-08" },
            "answers": ["/weeks/2026-W10/bike/km", "/weeks/2026-W10/car/km", "/weeks/2026-W10/walk/km"],
            "rounded": true,
        },
        "aggregation": { "type": "sum-vec", "length": 3, "max": 1000 },
        "aggregators": organisations.aggregators(["Nantes Métropole", "Observatoire"], leader_port),
        "minimum_batch": 3,
        "deadline_ms": deadline_ms,
        "published_to": "every participant",
        "neighbourhoods": "postcode",
    }));
    let (leader, _helper) = organisations.start_for(&home, leader_port);
    for resident in ["r1", "r2"] {
        home.ok(&["--resident", resident, "campaign", "join", &campaign.id, "--neighbourhood", "44000"]);
    }

    let server = Server::start(&home);
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let url = &server.url;
    sign_in(&browser, url, &password).await;
    go(&browser, &format!("{url}/#/campaign/{}", campaign.id), "How far residents travel").await;
    browser.find(Locator::Css("#neighbourhood")).await.unwrap().send_keys("44000").await.unwrap();
    click(&browser, "#join-campaign").await;
    wait_text(&browser, "#status", "You take part").await;
    let standing = wait_text(&browser, "#participation", "The result comes after").await;
    assert!(standing.contains("You take part: your report left on"), "{standing}");
    let early = browser.find(Locator::Css("#campaign-result")).await;
    assert!(early.is_err(), "no result to bring home before the deadline");

    // The leader is handed back: dropping it would stop it.
    let (collected, _leader) =
        tokio::task::spawn_blocking(move || (aggregators::collect_after(deadline_ms, &leader), leader)).await.unwrap();
    // Each of the three has the sample week: 23.9 km by bike, 23.9 by car, 1.2 on foot, each rounded.
    assert_eq!(collected["results"][0]["aggregate"], json!([72, 72, 3]), "{collected}");
    browser.refresh().await.unwrap();
    wait_text(&browser, "#participation", "Bring the result home").await;
    assert!(browser.find(Locator::Css("#leave-campaign")).await.is_err(), "no leaving after the deadline");
    click(&browser, "#campaign-result").await;
    wait_text(&browser, "#status", "The result is in your space").await;
    let result = wait_text(&browser, "#result", "3 participants in your neighbourhood, 44000").await;
    for line in ["bike: 72 km, 24 km per participant on average", "car: 72 km", "walk: 3 km, 1 km per participant"] {
        assert!(result.contains(line), "{line}:\n{result}");
    }
    shot(&browser, "campaign-result").await;
    let kept = home.ok(&["--json", "--resident", "me", "docs", "io.domicile.campaign.result"]).json();
    assert_eq!(kept[0]["body"]["aggregate"], json!([72, 72, 3]), "{kept}");

    // A resident who did not take part: closed, nothing to bring home.
    let late_password = home.set_password("late");
    browser.delete_all_cookies().await.unwrap();
    sign_in_as(&browser, url, "late", &late_password).await;
    go(&browser, &format!("{url}/#/campaign/{}", campaign.id), "How far residents travel").await;
    wait_text(&browser, "#participation", "This campaign closed on").await;
    assert!(browser.find(Locator::Css("#join-campaign")).await.is_err());
    browser.close().await.unwrap();
}
