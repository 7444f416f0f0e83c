//! The sample apps on the sample data, end to end through the real binary:
//! energy, budget, learning, mobility, the mobility survey's answer and the
//! mobility allowance's declaration. Every figure
//! an app computes is computed again here, independently, from the files or
//! from the stored documents; broken exports give an error naming the line
//! or element and write nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::{json, Value};

const ENERGY_IMPORTER: &str = "io.domicile.sample.energy-importer";
const ENERGY_INSIGHTS: &str = "io.domicile.sample.energy-insights";
const BANK_IMPORTER: &str = "io.domicile.sample.bank-importer";
const BUDGET: &str = "io.domicile.sample.budget";
const LEARNING_IMPORTER: &str = "io.domicile.sample.learning-importer";
const LEARNING_DASHBOARD: &str = "io.domicile.sample.learning-dashboard";
const DONATION: &str = "io.domicile.sample.data-donation";
const ALLOWANCE: &str = "io.domicile.sample.mobility-allowance";
/// Written in Python (componentize-py).
const TARIFF_CHECK: &str = "io.domicile.sample.tariff-check";
/// Written in JavaScript (componentize-js).
const RECURRING_PAYMENTS: &str = "io.domicile.sample.recurring-payments";

fn install(home: &TestHome, apps: &[&str]) {
    for app in apps {
        let name = app.strip_prefix("io.domicile.sample.").unwrap();
        home.install(&sample_package(name), &["all"]);
    }
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 0.0015, "{what}: the app says {a}, the test computes {b}");
}

fn count(home: &TestHome, doctype: &str) -> usize {
    home.docs(doctype).len()
}

/// `2026-03-02`, and the day before.
fn previous_day(date: &str) -> String {
    let d = time::Date::parse(date, time::macros::format_description!("[year]-[month]-[day]")).unwrap();
    d.previous_day().unwrap().to_string()
}

/// The `Horodate;Valeur` rows of an Enedis export, deduplicated by time, empty values left out.
fn enedis_rows(file: &str) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(sample_data(file)).unwrap();
    let mut rows = BTreeMap::new();
    for line in text.lines().skip(3) {
        let (at, value) = line.trim().split_once(';').unwrap();
        if !value.is_empty() {
            rows.insert(at.to_owned(), value.replace(',', ".").parse::<f64>().unwrap());
        }
    }
    rows
}

#[test]
fn energy_insights_match_the_meter_exports() {
    let home = TestHome::new();
    install(&home, &[ENERGY_IMPORTER, ENERGY_INSIGHTS]);
    let curve_file = sample_data("enedis-load-curve-2026-03.csv");
    let index_file = sample_data("enedis-daily-index-2025-2026.csv");
    let summary = home.ok(&["--json", "import", ENERGY_IMPORTER, curve_file.to_str().unwrap()]).json();
    assert_eq!((summary["missing_values"].as_u64(), summary["repeated_rows"].as_u64()), (Some(1), Some(1)));
    home.ok(&["import", ENERGY_IMPORTER, index_file.to_str().unwrap()]);
    let stored = count(&home, "io.domicile.energy.reading");
    home.ok(&["import", ENERGY_IMPORTER, curve_file.to_str().unwrap()]);
    assert_eq!(count(&home, "io.domicile.energy.reading"), stored, "importing again changes nothing");

    // A broken export: the line is named, nothing is written.
    let err = home.run(&["import", ENERGY_IMPORTER, fixture_data("enedis-broken.csv").to_str().unwrap()]);
    let err = err.one_line_error().to_owned();
    assert!(err.contains("line 9: value `1 2 3 kW`"), "{err}");
    assert_eq!(count(&home, "io.domicile.energy.reading"), stored);

    let tariff = r#"{"tariff": {"eur_per_kwh": 0.2516, "subscription_eur_per_month": 15.65}}"#;
    let report = home.ok(&["--json", "run", ENERGY_INSIGHTS, "--input", tariff]).json();

    // The same figures, from the files.
    let curve = enedis_rows("enedis-load-curve-2026-03.csv");
    let index: BTreeMap<String, f64> =
        enedis_rows("enedis-daily-index-2025-2026.csv").into_iter().map(|(at, v)| (at[..10].to_owned(), v)).collect();
    let mut load_days: BTreeMap<String, (f64, u32)> = BTreeMap::new();
    let mut hours: BTreeMap<u32, (f64, u32)> = BTreeMap::new();
    for (at, watts) in &curve {
        // The half-hour ending at `at`: a row at 00:00 belongs to the day before, hour 23.
        let (date, hh, mm) = (&at[..10], at[11..13].parse::<u32>().unwrap(), at[14..16].parse::<u32>().unwrap());
        let (day, start_minute) =
            if hh * 60 + mm >= 30 { (date.to_owned(), hh * 60 + mm - 30) } else { (previous_day(date), 1410) };
        let entry = load_days.entry(day).or_default();
        entry.0 += watts / 2.0;
        entry.1 += 1;
        let h = hours.entry(start_minute / 60).or_default();
        h.0 += watts;
        h.1 += 1;
    }
    // The sample's two sources agree: a whole day of load curve is that day's rise of the index (to the Wh).
    for pair in index.keys().collect::<Vec<_>>().windows(2) {
        if let Some((wh, half_hours)) = load_days.get(pair[0]).filter(|(_, n)| *n >= 46) {
            let rise = index[pair[1]] - index[pair[0]];
            assert!(
                (rise - wh).abs() <= 1.0,
                "{}: index {rise} Wh, load curve {wh} Wh ({half_hours} half-hours)",
                pair[0]
            );
        }
    }
    let mut daily: BTreeMap<String, f64> = BTreeMap::new();
    let dates: Vec<&String> = index.keys().collect();
    for pair in dates.windows(2) {
        daily.insert(pair[0].clone(), (index[pair[1]] - index[pair[0]]) / 1000.0);
    }
    for (day, (wh, n)) in &load_days {
        if *n >= 46 || !daily.contains_key(day) {
            daily.insert(day.clone(), wh / 1000.0);
        }
    }
    for (day, kwh) in &daily {
        close(report["days"][day].as_f64().unwrap(), (kwh * 1000.0).round() / 1000.0, day);
    }
    let march: f64 = daily.iter().filter(|(d, _)| d.starts_with("2026-03")).map(|(_, k)| k).sum();
    let m = &report["months"]["2026-03"];
    close(m["kwh"].as_f64().unwrap(), march, "March 2026 kWh");
    assert_eq!(m["days"], 14);
    close(m["cost_eur"].as_f64().unwrap(), ((march * 0.2516 + 15.65) * 100.0).round() / 100.0, "March cost");
    let last_year: f64 =
        daily.iter().filter(|(d, _)| d.starts_with("2026-03")).map(|(d, _)| daily[&format!("2025{}", &d[4..])]).sum();
    let cmp = &m["same_days_last_year"];
    assert_eq!(cmp["days"], 14);
    close(cmp["kwh_last_year"].as_f64().unwrap(), last_year, "same days of 2025");
    let change = ((march - last_year) / last_year * 1000.0).round() / 10.0;
    close(cmp["change_pct"].as_f64().unwrap(), change, "change in %");

    let mut powers: Vec<f64> = curve.values().copied().collect();
    powers.sort_by(f64::total_cmp);
    let rank = (powers.len() as f64 / 10.0).ceil() as usize;
    close(report["base_load_w"].as_f64().unwrap(), powers[rank - 1], "base load");
    let mut peaks: Vec<(u32, f64)> =
        hours.iter().map(|(h, (sum, n))| (*h, (sum / *n as f64 * 10.0).round() / 10.0)).collect();
    peaks.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let app_peaks: Vec<(u32, f64)> = report["peak_hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["hour"].as_u64().unwrap() as u32, p["avg_w"].as_f64().unwrap()))
        .collect();
    assert_eq!(app_peaks, peaks[..3].to_vec());

    // What the view shows are the same figures: the headline, one bar per
    // day of the last 92 (none for a day without data), the months.
    let figure = block(&report, "number", "2026-03 (14 days)");
    close(figure["value"].as_f64().unwrap(), march, "headline kWh");
    close(figure["delta"].as_f64().unwrap(), change, "headline change");
    let per_day = block(&report, "chart", "Energy per day");
    let x = per_day["x"].as_array().unwrap();
    assert_eq!(x.len(), 92);
    assert_eq!(x.last().unwrap(), daily.keys().next_back().unwrap().as_str());
    for (day, value) in x.iter().zip(per_day["series"][0]["values"].as_array().unwrap()) {
        match daily.get(day.as_str().unwrap()) {
            Some(kwh) => close(value.as_f64().unwrap(), (kwh * 1000.0).round() / 1000.0, &format!("bar of {day}")),
            None => assert!(value.is_null(), "{day}: no data, no bar"),
        }
    }
    let per_month = block(&report, "chart", "Energy per month");
    let march_at = per_month["x"].as_array().unwrap().iter().position(|m| m == "2026-03").unwrap();
    close(per_month["series"][0]["values"][march_at].as_f64().unwrap(), march, "March bar");
    close(per_month["series"][1]["values"][march_at].as_f64().unwrap(), last_year, "March a year earlier");
}

/// The block of `kind` in a service's view whose label or title starts with `title`.
fn block<'a>(report: &'a Value, kind: &str, title: &str) -> &'a Value {
    report["view"]
        .as_array()
        .expect("the output has a view")
        .iter()
        .filter_map(|b| b.get(kind))
        .find(|b| b["title"].as_str().or(b["label"].as_str()).is_some_and(|t| t.starts_with(title)))
        .unwrap_or_else(|| panic!("no {kind} `{title}` in {}", report["view"]))
}

/// The budget's built-in rules, as its documentation lists them.
const RULES: [(&str, &str); 30] = [
    ("SALAIRE", "income"),
    ("CAF ", "income"),
    ("LOYER", "housing"),
    ("EDF", "energy"),
    ("ENGIE", "energy"),
    ("TOTALENERGIES", "fuel"),
    ("TOTAL ACCESS", "fuel"),
    ("ESSO", "fuel"),
    ("SHELL", "fuel"),
    ("STATION ", "fuel"),
    ("NAOLIB", "transit"),
    ("TAN ", "transit"),
    ("SNCF", "transit"),
    ("TER ", "transit"),
    ("BICLOO", "transit"),
    ("PARKING", "parking"),
    ("INDIGO", "parking"),
    ("CARREFOUR", "food"),
    ("LECLERC", "food"),
    ("LIDL", "food"),
    ("MONOPRIX", "food"),
    ("BIOCOOP", "food"),
    ("BOULANGERIE", "food"),
    ("MARCHE", "food"),
    ("PHARMACIE", "health"),
    ("DOCTEUR", "health"),
    ("CINEMA", "leisure"),
    ("FNAC", "leisure"),
    ("FREE MOBILE", "telecom"),
    ("ORANGE", "telecom"),
];

/// The Python app: base tariff or off-peak hours, recomputed from the
/// load-curve file (intervals starting 22:00-06:00 local are off-peak).
#[test]
fn the_python_tariff_check_prices_the_load_curve_as_the_file_says() {
    let home = TestHome::new();
    install(&home, &[ENERGY_IMPORTER, TARIFF_CHECK]);
    let err = home.run(&["run", TARIFF_CHECK]).one_line_error().to_owned();
    assert!(err.contains("no load curve among your energy readings"), "{err}");
    let curve_file = sample_data("enedis-load-curve-2026-03.csv");
    home.ok(&["import", ENERGY_IMPORTER, curve_file.to_str().unwrap()]);
    // The daily indexes are energy readings too, but no load curve: left out.
    home.ok(&["import", ENERGY_IMPORTER, sample_data("enedis-daily-index-2025-2026.csv").to_str().unwrap()]);

    let intervals = load_curve_intervals_from_file(&curve_file);
    let kwh: f64 = intervals.iter().map(|(_, e)| e).sum();
    let off_peak = |start: &time::OffsetDateTime| start.hour() >= 22 || start.hour() < 6;
    let off_peak_kwh: f64 = intervals.iter().filter(|(s, _)| off_peak(s)).map(|(_, e)| e).sum();
    let days: BTreeSet<time::Date> = intervals.iter().map(|(s, _)| s.date()).collect();
    let months = days.len() as f64 / (365.0 / 12.0);
    let base = kwh * 0.2016 + months * 15.65;
    let split = (kwh - off_peak_kwh) * 0.2146 + off_peak_kwh * 0.1696 + months * 15.96;

    let report = home.ok(&["--json", "run", TARIFF_CHECK]).json();
    assert_eq!(report["period"], json!({"from": "2026-03-01", "to": "2026-03-14", "days": days.len()}));
    close(report["kwh"].as_f64().unwrap(), kwh, "kWh");
    close(report["off_peak_kwh"].as_f64().unwrap(), off_peak_kwh, "off-peak kWh");
    assert!((report["options"][0]["total_eur"].as_f64().unwrap() - base).abs() < 0.006, "{report}");
    assert!((report["options"][1]["total_eur"].as_f64().unwrap() - split).abs() < 0.006, "{report}");
    assert_eq!(report["cheaper"], if split < base { "off-peak hours" } else { "base" });
    let saving = (base - split).abs() / days.len() as f64 * 365.0;
    assert!((report["saving_eur_per_year"].as_f64().unwrap() - saving).abs() < 0.006, "{report}");
    assert_eq!(report["skipped_readings"], 0);

    // The resident's own prices and window: all off-peak at a lower price makes it cheaper.
    let input = r#"{"off_peak": {"hours": "00:00-23:59", "off_peak_eur_per_kwh": 0.10}}"#;
    let report = home.ok(&["--json", "run", TARIFF_CHECK, "--input", input]).json();
    assert_eq!(report["cheaper"], "off-peak hours", "{report}");
    for (bad, says) in [
        (r#"{"off_peak": {"hours": "25:00-06:00"}}"#, "is not a time of day"),
        (r#"{"base": {"eur_per_kwh": "cheap"}}"#, "must be a number of euros"),
        (r#"{"tarif": {}}"#, "unknown input fields: tarif"),
    ] {
        let err = home.run(&["run", TARIFF_CHECK, "--input", bad]).one_line_error().to_owned();
        assert!(err.contains(says), "{bad}: {err}");
    }
}

/// The JavaScript app: payees debited once a month for about the same
/// amount, recomputed from the stored operations.
#[test]
fn the_javascript_recurring_payments_are_the_monthly_debits_of_the_statements() {
    let home = TestHome::new();
    install(&home, &[BANK_IMPORTER, RECURRING_PAYMENTS]);
    home.ok(&["import", BANK_IMPORTER, sample_data("bank-2026-02.ofx").to_str().unwrap()]);
    home.ok(&["import", BANK_IMPORTER, sample_data("bank-2026-03.csv").to_str().unwrap()]);

    // Independently: group the debits by label without digits, keep payees
    // seen once in each of 2+ months within 5 % of their median.
    let mut by_payee: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for doc in home.docs("io.domicile.bank.operation") {
        let body = &doc["body"];
        let amount = body["amount"].as_f64().unwrap();
        if amount < 0.0 {
            let label = body["label"].as_str().unwrap().to_uppercase();
            let payee: Vec<&str> = label
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty() && !w.chars().any(|c| c.is_ascii_digit()))
                .collect();
            by_payee
                .entry(payee.join(" "))
                .or_default()
                .push((body["date"].as_str().unwrap()[..7].to_owned(), -amount));
        }
    }
    let mut expected: Vec<(String, f64)> = Vec::new();
    for (payee, payments) in by_payee {
        let months: BTreeSet<&String> = payments.iter().map(|(m, _)| m).collect();
        let mut amounts: Vec<f64> = payments.iter().map(|(_, a)| *a).collect();
        amounts.sort_by(f64::total_cmp);
        let n = amounts.len();
        let median = if n % 2 == 1 { amounts[n / 2] } else { (amounts[n / 2 - 1] + amounts[n / 2]) / 2.0 };
        if months.len() >= 2 && months.len() == n && amounts.iter().all(|a| (a - median).abs() <= 0.05 * median) {
            expected.push((payee, median));
        }
    }
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));

    let report = home.ok(&["--json", "run", RECURRING_PAYMENTS]).json();
    let found: Vec<(String, f64)> = report["recurring"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["payee"].as_str().unwrap().to_owned(), r["monthly_eur"].as_f64().unwrap()))
        .collect();
    assert_eq!(found, expected);
    // What the statements hold: rent, electricity, the transport pass, the phone;
    // not the baker (twice in a month) nor the supermarket (amounts vary).
    let payees: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        payees,
        [
            "PRLV SEPA LOYER FONCIA",
            "PRLV SEPA EDF CLIENTS PARTICULIERS",
            "NAOLIB ABONNEMENT MENSUEL",
            "PRLV FREE MOBILE"
        ]
    );
    let monthly: f64 = expected.iter().map(|(_, a)| a).sum();
    close(report["monthly_eur"].as_f64().unwrap(), monthly, "monthly total");
    close(report["yearly_eur"].as_f64().unwrap(), monthly * 12.0, "yearly total");
    assert_eq!(report["months"], json!(["2026-02", "2026-03"]));

    let err = home.run(&["run", RECURRING_PAYMENTS, "--input", r#"{"min_months": 1}"#]).one_line_error().to_owned();
    assert!(err.contains("min_months must be an integer of at least 2"), "{err}");
}

#[test]
fn budget_categorises_ofx_and_csv_statements() {
    let home = TestHome::new();
    install(&home, &[BANK_IMPORTER, BUDGET]);
    let err = home.run(&["import", BANK_IMPORTER, fixture_data("bank-broken.ofx").to_str().unwrap()]);
    assert!(err.one_line_error().contains("line 18 (STMTTRN #3): TRNAMT `2 150.OO` is not a number"), "{}", err.stderr);
    assert_eq!(count(&home, "io.domicile.bank.operation"), 0);

    for _ in 0..2 {
        let ofx =
            home.ok(&["--json", "import", BANK_IMPORTER, sample_data("bank-2026-02.ofx").to_str().unwrap()]).json();
        assert_eq!(
            (ofx["format"].as_str(), ofx["operations"].as_u64(), ofx["repeated"].as_u64()),
            (Some("ofx"), Some(16), Some(1))
        );
        let csv =
            home.ok(&["--json", "import", BANK_IMPORTER, sample_data("bank-2026-03.csv").to_str().unwrap()]).json();
        assert_eq!((csv["format"].as_str(), csv["operations"].as_u64()), (Some("csv"), Some(14)));
    }
    let ops: Vec<Value> = home.docs("io.domicile.bank.operation").into_iter().map(|d| d["body"].clone()).collect();
    assert_eq!(ops.len(), 30, "16 + 14 operations, however many imports");
    assert!(ops.iter().all(|o| o["account"] == "00012345678" && o["currency"] == "EUR"));
    let bakery: Vec<&Value> = ops.iter().filter(|o| o["date"] == "2026-03-02").collect();
    assert_eq!(bakery.len(), 2, "two identical purchases the same day are two operations");
    assert!(ops.iter().any(|o| o["label"] == "VIR SEPA SALAIRE MARS ACME" && o["amount"] == 2150.0));
    assert!(ops.iter().any(|o| o["label"] == "SHELL NANTES ATLANTIQUE" && o["amount"] == -58.75));

    let report = home
        .ok(&["--json", "run", BUDGET, "--input", r#"{"rules": [{"contains": "librairie", "category": "books"}]}"#])
        .json();
    let rules: Vec<(&str, &str)> = std::iter::once(("LIBRAIRIE", "books")).chain(RULES).collect();
    let mut spent: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut income: BTreeMap<String, f64> = BTreeMap::new();
    for op in &ops {
        let month = op["date"].as_str().unwrap()[..7].to_owned();
        let label = format!("{} ", op["label"].as_str().unwrap().to_uppercase());
        let amount = op["amount"].as_f64().unwrap();
        match (rules.iter().find(|(t, _)| label.contains(t)).map(|(_, c)| *c), amount >= 0.0) {
            (Some("income"), _) | (None, true) => *income.entry(month).or_default() += amount,
            (category, _) => *spent.entry((month, category.unwrap_or("other").to_owned())).or_default() -= amount,
        }
    }
    for ((month, category), total) in &spent {
        close(report["months"][month]["spent"][category].as_f64().unwrap(), *total, &format!("{month} {category}"));
    }
    for (month, total) in &income {
        close(report["months"][month]["income"].as_f64().unwrap(), *total, &format!("{month} income"));
    }
    for month in ["2026-02", "2026-03"] {
        let get = |c: &str| spent.get(&(month.to_owned(), c.to_owned())).copied().unwrap_or(0.0);
        let mobility = &report["mobility"][month];
        close(mobility["fuel"].as_f64().unwrap(), get("fuel"), "fuel");
        close(mobility["transit"].as_f64().unwrap(), get("transit"), "transit");
        close(mobility["total"].as_f64().unwrap(), get("fuel") + get("transit") + get("parking"), "mobility");
    }
    assert_eq!(report["months"]["2026-03"]["spent"]["books"], 24.9, "the resident's own rule came first");

    // The view's table and chart show the same spending, per category and month.
    let table = block(&report, "table", "Spent per category");
    assert_eq!(table["columns"], json!(["category", "2026-02 EUR", "2026-03 EUR"]));
    let categories: std::collections::BTreeSet<&String> = spent.keys().map(|(_, c)| c).collect();
    assert_eq!(table["rows"].as_array().unwrap().len(), categories.len());
    let chart = block(&report, "chart", "Spending per category and month");
    for row in table["rows"].as_array().unwrap() {
        let category = row[0].as_str().unwrap();
        let series = chart["series"].as_array().unwrap().iter().find(|s| s["name"] == category).unwrap();
        for (i, month) in ["2026-02", "2026-03"].into_iter().enumerate() {
            match spent.get(&(month.to_owned(), category.to_owned())) {
                Some(total) => {
                    close(row[i + 1].as_f64().unwrap(), *total, &format!("table {month} {category}"));
                    close(series["values"][i].as_f64().unwrap(), *total, &format!("bar {month} {category}"));
                }
                None => assert!(row[i + 1].is_null() && series["values"][i].is_null(), "{month} {category}"),
            }
        }
    }
    let march_spent: f64 = spent.iter().filter(|((m, _), _)| m == "2026-03").map(|(_, v)| v).sum();
    close(block(&report, "number", "Spent in 2026-03")["value"].as_f64().unwrap(), march_spent, "spent in March");
}

/// The `TRNAMT` of each `<STMTTRN>` of an OFX file, read from its text alone.
fn ofx_amounts(path: &std::path::Path) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap_or_else(|_| bytes.iter().map(|&b| b as char).collect());
    let upper = text.to_uppercase();
    upper
        .split("<STMTTRN>")
        .skip(1)
        .map(|txn| {
            let after = &txn[txn.find("<TRNAMT>").unwrap() + 8..];
            let raw: String = after.chars().take_while(|c| *c != '<' && !c.is_whitespace()).collect();
            raw.replace(',', ".").parse::<f64>().unwrap()
        })
        .collect()
}

/// Every OFX file of the corpus (other parsers' test fixtures and a French
/// bank's layout) imports as its expectations say, or is refused naming
/// what is wrong. Counts and sums are checked against the files' text too.
#[test]
fn bank_corpus_gives_the_expected_figures() {
    for_each_corpus_file(
        "ofx",
        &[BANK_IMPORTER],
        "io.domicile.bank.operation",
        |name, path, expected, home, summary| {
            let amounts = ofx_amounts(path);
            assert_eq!(
                amounts.len() as u64,
                expected["operations"].as_u64().unwrap(),
                "{name}: operations in the text"
            );
            close(amounts.iter().sum(), expected["sum"].as_f64().unwrap(), &format!("{name}: sum in the text"));
            assert_eq!(summary["operations"], expected["operations"], "{name}: {summary}");
            let ops: Vec<Value> =
                home.docs("io.domicile.bank.operation").into_iter().map(|d| d["body"].clone()).collect();
            assert_eq!(ops.len() as u64, expected["operations"].as_u64().unwrap(), "{name}: stored");
            close(ops.iter().map(|o| o["amount"].as_f64().unwrap()).sum(), expected["sum"].as_f64().unwrap(), name);
            if let Some(currency) = expected["currency"].as_str() {
                assert!(ops.iter().all(|o| o["currency"] == currency), "{name}: currency");
            }
            if let Some(labels) = expected["labels"].as_array() {
                let mut stored: Vec<(String, String)> = ops
                    .iter()
                    .map(|o| (o["date"].as_str().unwrap().to_owned(), o["label"].as_str().unwrap().to_owned()))
                    .collect();
                stored.sort();
                let stored: Vec<&str> = stored.iter().map(|(_, l)| l.as_str()).collect();
                assert_eq!(stored, labels.iter().map(|l| l.as_str().unwrap()).collect::<Vec<_>>(), "{name}: labels");
            }
            let mut balances: Vec<Value> = home
                .docs("io.domicile.bank.balance")
                .into_iter()
                .map(|d| json!([d["body"]["account"], d["body"]["date"], d["body"]["amount"]]))
                .collect();
            balances.sort_by_key(|b| b.to_string());
            assert_eq!(Value::Array(balances), expected["balances"], "{name}: balances");
            // Importing again changes nothing, derived ids included.
            home.ok(&["import", BANK_IMPORTER, path.to_str().unwrap()]);
            assert_eq!(count(home, "io.domicile.bank.operation") as u64, expected["operations"].as_u64().unwrap());
        },
    );
}

/// Every bank CSV of the corpus (the layouts of French and online banks:
/// preambles, column names, encodings, decimal commas, grouped thousands,
/// declined operations, fees) gives the operations, sum and account its
/// expectations state, or is refused naming the line.
#[test]
fn bank_csv_corpus_gives_the_expected_figures() {
    for_each_corpus_file(
        "bank-csv",
        &[BANK_IMPORTER],
        "io.domicile.bank.operation",
        |name, path, expected, home, summary| {
            assert_eq!(summary["format"], "csv", "{name}");
            assert_eq!(summary["operations"], expected["operations"], "{name}: {summary}");
            let ops: Vec<Value> =
                home.docs("io.domicile.bank.operation").into_iter().map(|d| d["body"].clone()).collect();
            close(ops.iter().map(|o| o["amount"].as_f64().unwrap()).sum(), expected["sum"].as_f64().unwrap(), name);
            assert!(ops.iter().all(|o| o["account"] == expected["account"]), "{name}: account {}", ops[0]["account"]);
            // The dates the file covers, so that a file cut off shows.
            let dates: BTreeSet<&str> = ops.iter().map(|o| o["date"].as_str().unwrap()).collect();
            assert_eq!(
                (summary["first"].as_str(), summary["last"].as_str()),
                (dates.first().copied(), dates.last().copied()),
                "{name}"
            );
            home.ok(&["import", BANK_IMPORTER, path.to_str().unwrap()]);
            assert_eq!(
                count(home, "io.domicile.bank.operation") as u64,
                expected["operations"].as_u64().unwrap(),
                "{name}"
            );
        },
    );
}

/// A file with broken records: by default nothing of it is imported; with
/// `--partial`, its valid records are, every broken one is listed with where
/// it is and why, and the audit log says the import was partial.
#[test]
fn a_file_with_broken_records_imports_whole_or_its_valid_records_as_the_resident_chooses() {
    let home = TestHome::new();
    install(&home, &[BANK_IMPORTER, ENERGY_IMPORTER]);
    let broken = fixture_data("bank-broken.ofx");
    let refused = home.run(&["import", BANK_IMPORTER, broken.to_str().unwrap()]);
    assert!(
        refused.one_line_error().contains("line 18 (STMTTRN #3): TRNAMT `2 150.OO` is not a number"),
        "{}",
        refused.stderr
    );
    assert_eq!(count(&home, "io.domicile.bank.operation"), 0);

    // The operations of the file but the third, by FITID (the file repeats one).
    let text = std::fs::read_to_string(&broken).unwrap();
    let valid: BTreeSet<&str> = text
        .split("<STMTTRN>")
        .skip(1)
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, txn)| txn.split("<FITID>").nth(1).unwrap().split('<').next().unwrap())
        .collect();
    let summary = home.ok(&["--json", "import", "--partial", BANK_IMPORTER, broken.to_str().unwrap()]).json();
    assert_eq!(
        summary["left_out"],
        json!([{ "location": "line 18 (STMTTRN #3)", "reason": "TRNAMT `2 150.OO` is not a number" }])
    );
    assert_eq!(summary["operations"].as_u64(), Some(valid.len() as u64), "{summary}");
    assert_eq!(count(&home, "io.domicile.bank.operation"), valid.len());

    // In words, for a person; and a load curve with a broken row.
    let curve = fixture_data("enedis-broken.csv");
    let said = home.ok(&["import", "--partial", ENERGY_IMPORTER, curve.to_str().unwrap()]).stdout;
    assert!(said.contains("left out 1 broken record(s), as you asked (--partial):"), "{said}");
    assert!(said.contains("  line 9: value `1 2 3 kW` is not a non-negative number"), "{said}");
    let rows = std::fs::read_to_string(&curve).unwrap().lines().filter(|l| l.starts_with("2026-")).count();
    assert_eq!(count(&home, "io.domicile.energy.reading"), rows - 1);

    let audit = home.ok(&["audit", "--summary"]).stdout;
    for app in [BANK_IMPORTER, ENERGY_IMPORTER] {
        assert!(
            audit.contains(&format!("{app} left out 1 broken record(s) in 1 partial import(s), as the resident chose")),
            "{audit}"
        );
    }
    home.ok(&["audit", "verify"]);
}

/// What the dashboard must show per (month, subject), computed here from
/// LRS files by the xAPI rules: a statement with the verb `voided` and a
/// `StatementRef` object withdraws the statement it names (wherever it came
/// from), is not a record itself, and cannot be voided.
#[derive(Default, Debug)]
struct Tally {
    statements: u64,
    completed: u64,
    passed: u64,
    failed: u64,
    scores: Vec<f64>,
    minutes: f64,
}

fn learning_tallies(files: &[&std::path::Path]) -> BTreeMap<(String, String), Tally> {
    const VOIDED: &str = "http://adlnet.gov/expapi/verbs/voided";
    let mut unique = BTreeMap::new();
    for file in files {
        let lrs: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        for s in lrs["statements"].as_array().unwrap() {
            unique.insert(s["id"].as_str().unwrap().to_owned(), s.clone());
        }
    }
    let is_voiding = |s: &Value| s["verb"]["id"] == VOIDED;
    let voided: BTreeSet<String> = unique
        .values()
        .filter(|s| is_voiding(s) && !unique.get(s["object"]["id"].as_str().unwrap()).is_some_and(is_voiding))
        .map(|s| s["object"]["id"].as_str().unwrap().to_owned())
        .collect();
    let mut tallies: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for (id, s) in &unique {
        if is_voiding(s) || voided.contains(id) {
            continue;
        }
        let month = s["timestamp"].as_str().unwrap()[..7].to_owned();
        let subject =
            s["context"]["contextActivities"]["category"][0]["id"].as_str().unwrap().rsplit('/').next().unwrap();
        let t = tallies.entry((month, subject.to_owned())).or_default();
        t.statements += 1;
        match s["verb"]["id"].as_str().unwrap().rsplit('/').next().unwrap() {
            "completed" => t.completed += 1,
            "passed" => t.passed += 1,
            "failed" => t.failed += 1,
            _ => {}
        }
        if let Some(score) = s["result"]["score"]["scaled"].as_f64() {
            t.scores.push(score);
        }
        if let Some(d) = s["result"]["duration"].as_str() {
            // PT1H5M, PT45M: the sample data uses hours and minutes.
            let d = d.trim_start_matches("PT");
            let (h, m) = d.split_once('H').map_or((0.0, d), |(h, m)| (h.parse().unwrap(), m));
            t.minutes += h * 60.0 + m.trim_end_matches('M').parse::<f64>().unwrap_or(0.0);
        }
    }
    tallies
}

fn assert_dashboard_shows(report: &Value, tallies: &BTreeMap<(String, String), Tally>) {
    let shown: usize =
        report["months"].as_object().unwrap().values().map(|m| m["subjects"].as_object().unwrap().len()).sum();
    assert_eq!(shown, tallies.len(), "the dashboard shows exactly the (month, subject) pairs of the records");
    for ((month, subject), t) in tallies {
        let s = &report["months"][month]["subjects"][subject];
        assert_eq!(
            (s["statements"].as_u64(), s["completed"].as_u64(), s["passed"].as_u64(), s["failed"].as_u64()),
            (Some(t.statements), Some(t.completed), Some(t.passed), Some(t.failed)),
            "{month} {subject}"
        );
        close(s["minutes"].as_f64().unwrap(), t.minutes, &format!("{month} {subject} minutes"));
        match t.scores.is_empty() {
            true => assert!(s["avg_score"].is_null()),
            false => close(
                s["avg_score"].as_f64().unwrap(),
                (t.scores.iter().sum::<f64>() / t.scores.len() as f64 * 1000.0).round() / 1000.0,
                "average score",
            ),
        }
    }
}

#[test]
fn the_learning_dashboard_counts_what_the_records_say() {
    let home = TestHome::new();
    install(&home, &[LEARNING_IMPORTER, LEARNING_DASHBOARD]);
    let err = home.run(&["import", LEARNING_IMPORTER, fixture_data("xapi-broken.json").to_str().unwrap()]);
    assert!(err.one_line_error().contains("statement 4 (9f1c0004-"), "{}", err.stderr);
    assert!(err.one_line_error().contains("no verb.id"));
    assert_eq!(count(&home, "io.domicile.learning.statement"), 0);
    let file = sample_data("xapi-lea-2026.json");
    home.ok(&["import", LEARNING_IMPORTER, file.to_str().unwrap()]);
    home.ok(&["import", LEARNING_IMPORTER, file.to_str().unwrap()]);

    let tallies = learning_tallies(&[&file]);
    let records: u64 = tallies.values().map(|t| t.statements).sum();
    assert_eq!(count(&home, "io.domicile.learning.statement") as u64, records);
    assert_dashboard_shows(&home.ok(&["--json", "run", LEARNING_DASHBOARD]).json(), &tallies);
}

/// A large export is imported whole by an importer held to its 64 MiB: it
/// reads the statements one at a time (as one JSON tree, this 15 MB file of
/// 20,000 statements took more than 64 MiB, and the import was refused).
#[test]
fn a_large_learning_export_is_imported_within_the_importer_s_memory() {
    let home = TestHome::new();
    install(&home, &[LEARNING_IMPORTER]);
    let statements: Vec<Value> = (0..20_000)
        .map(|i| {
            let subject = ["maths", "francais", "histoire", "physique"][i % 4];
            json!({
                "id": format!("00000000-0000-4000-8000-{i:012}"),
                "actor": { "objectType": "Agent", "name": "Léa", "mbox": "mailto:lea@example.org" },
                "verb": { "id": "http://adlnet.gov/expapi/verbs/completed", "display": { "fr-FR": "a terminé" } },
                "object": {
                    "objectType": "Activity",
                    "id": format!("https://ent.example.fr/activites/{subject}/{i}"),
                    "definition": { "name": { "fr-FR": format!("Exercice {i}") }, "type": "http://adlnet.gov/expapi/activities/assessment" }
                },
                "result": { "score": { "scaled": (i % 100) as f64 / 100.0, "raw": i % 20, "min": 0, "max": 20 }, "completion": true, "duration": "PT5M" },
                "context": { "contextActivities": { "category": [{ "id": format!("https://ent.example.fr/matieres/{subject}") }] } },
                "timestamp": format!("2026-{:02}-{:02}T10:{:02}:00Z", 1 + i % 9, 1 + i % 28, i % 60),
                "stored": "2026-10-01T00:00:00Z",
                "version": "1.0.3"
            })
        })
        .collect();
    let file = home.path().join("ent-export.json");
    std::fs::write(&file, json!({ "statements": statements, "more": "" }).to_string()).unwrap();
    assert!(std::fs::metadata(&file).unwrap().len() > 12 << 20, "the file is as large as the one that was refused");
    let imported = home.ok(&["--json", "import", LEARNING_IMPORTER, file.to_str().unwrap()]).json();
    assert_eq!(imported["statements"].as_u64(), Some(20_000), "{imported}");
    assert_eq!(count(&home, "io.domicile.learning.statement"), 20_000);
}

/// A statement id names one statement for good: a later file that reuses
/// the id of a record imported earlier with other content is refused whole
/// (an LRS answers 409 Conflict), and the same file again changes nothing.
#[test]
fn a_learning_record_reusing_an_imported_id_with_other_content_is_refused() {
    let home = TestHome::new();
    install(&home, &[LEARNING_IMPORTER]);
    let file = sample_data("xapi-lea-2026.json");
    home.ok(&["import", LEARNING_IMPORTER, file.to_str().unwrap()]);
    let before = home.docs("io.domicile.learning.statement");

    let mut lrs: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let statements = lrs["statements"].as_array_mut().unwrap();
    let reused = statements[2]["id"].as_str().unwrap().to_owned();
    statements[2]["result"] = json!({ "score": { "scaled": 0.99 }, "completion": true });
    statements[0]["id"] = json!("9f1c0099-7a3e-4b21-9c55-2e6d1a0b0099");
    let changed = home.path().join("changed.json");
    std::fs::write(&changed, lrs.to_string()).unwrap();
    let refused = home.run(&["import", LEARNING_IMPORTER, changed.to_str().unwrap()]);
    let error = refused.one_line_error();
    assert!(error.contains(&format!("statement {reused} reuses the id of a record imported earlier")), "{error}");
    assert!(error.contains("409 Conflict"), "{error}");
    assert_eq!(home.docs("io.domicile.learning.statement"), before, "nothing was imported, the new record neither");

    let again = home.ok(&["--json", "import", LEARNING_IMPORTER, file.to_str().unwrap()]).json();
    assert_eq!(again["statements"].as_u64(), Some(before.len() as u64));
    assert_eq!(home.docs("io.domicile.learning.statement"), before);
}

/// A school withdraws a failed quiz imported earlier and a passed one in the
/// same file, and tries to void its own voiding: the withdrawn statements
/// leave the store and the dashboard, voidings are not records, and
/// importing the older file again does not bring the withdrawn one back.
#[test]
fn voided_learning_records_do_not_count_even_when_imported_earlier() {
    let (first, voiding) = (sample_data("xapi-lea-2026.json"), fixture_data("xapi-voiding.json"));
    // Allowed only to write records, the importer refuses a file that withdraws some, saying what to allow.
    let partial = TestHome::new();
    partial.install(&sample_package("learning-importer"), &["io.domicile.learning.statement:write"]);
    let refused = partial.run(&["import", LEARNING_IMPORTER, voiding.to_str().unwrap()]);
    assert!(refused.one_line_error().contains("withdraws 2 record(s)"), "{}", refused.stderr);
    assert!(refused.one_line_error().contains("allow it to write io.domicile.learning.voiding"), "{}", refused.stderr);
    assert_eq!(count(&partial, "io.domicile.learning.statement"), 0, "nothing was imported");
    partial.ok(&["import", LEARNING_IMPORTER, first.to_str().unwrap()]);
    assert_eq!(count(&partial, "io.domicile.learning.statement"), 18, "a file without voidings needs no more");

    let home = TestHome::new();
    install(&home, &[LEARNING_IMPORTER, LEARNING_DASHBOARD]);
    home.ok(&["import", LEARNING_IMPORTER, first.to_str().unwrap()]);
    let withdrawn = "9f1c0015-7a3e-4b21-9c55-2e6d1a0b0015";
    assert!(home.docs("io.domicile.learning.statement").iter().any(|d| d["id"] == withdrawn));

    let summary = home.ok(&["--json", "import", LEARNING_IMPORTER, voiding.to_str().unwrap()]).json();
    assert_eq!(
        (&summary["statements"], &summary["voidings"], &summary["voided"], &summary["ignored_voidings"]),
        (&json!(1), &json!(2), &json!(2), &json!(1)),
        "{summary}"
    );
    let stored = home.docs("io.domicile.learning.statement");
    assert!(stored.iter().all(|d| d["id"] != withdrawn), "the statement voided later left the store");
    assert!(stored.iter().all(|d| d["body"]["verb"] != "http://adlnet.gov/expapi/verbs/voided"));
    assert!(stored.iter().all(|d| d["id"] != "9f1c0020-7a3e-4b21-9c55-2e6d1a0b0020"), "voided in its own file");
    assert_eq!(count(&home, "io.domicile.learning.voiding"), 2);

    let tallies = learning_tallies(&[&first, &voiding]);
    assert_eq!(stored.len() as u64, tallies.values().map(|t| t.statements).sum::<u64>());
    assert_dashboard_shows(&home.ok(&["--json", "run", LEARNING_DASHBOARD]).json(), &tallies);

    let again = home.ok(&["--json", "import", LEARNING_IMPORTER, first.to_str().unwrap()]).json();
    assert_eq!(again["voided"], 1, "{again}");
    assert!(home.docs("io.domicile.learning.statement").iter().all(|d| d["id"] != withdrawn));
    assert_dashboard_shows(&home.ok(&["--json", "run", LEARNING_DASHBOARD]).json(), &tallies);
}

/// Every GPX file of the corpus (a GPX library's test files, GPX 1.0 and
/// times without a zone among them) gives the points, trips and kilometres
/// its expectations state (computed by `expect.py` with its own XML parser
/// and trip rule), or is refused naming the line.
#[test]
fn gpx_corpus_gives_the_expected_figures() {
    for_each_corpus_file("gpx", &[IMPORTER], "io.domicile.mobility.trip", |name, _path, expected, home, summary| {
        for key in ["points", "untimed_points", "trips"] {
            assert_eq!(summary[key], expected[key], "{name}: {key} in {summary}");
        }
        let trips = home.docs(TRIP);
        assert_eq!(trips.len() as u64, expected["trips"].as_u64().unwrap(), "{name}: stored trips");
        let km: f64 = trips.iter().map(|t| t["body"]["distance_m"].as_f64().unwrap() / 1000.0).sum();
        close(km, expected["km"].as_f64().unwrap(), &format!("{name}: km"));
    });
}

/// Every xAPI file of the corpus (another library's test statements, and
/// files after the exports of Learning Locker, Moodle, H5P and SCORM Cloud)
/// gives the records, voidings and per-month figures its expectations state
/// (computed by `expect.py` by the xAPI rules), or is refused naming the
/// statement.
#[test]
fn xapi_corpus_gives_the_expected_figures() {
    for_each_corpus_file(
        "xapi",
        &[LEARNING_IMPORTER, LEARNING_DASHBOARD],
        "io.domicile.learning.statement",
        |name, _path, expected, home, summary| {
            for key in ["statements", "voidings", "voided"] {
                assert_eq!(summary[key], expected[key], "{name}: {key} in {summary}");
            }
            assert_eq!(count(home, "io.domicile.learning.statement") as u64, expected["statements"].as_u64().unwrap());
            let report = home.ok(&["--json", "run", LEARNING_DASHBOARD]).json();
            let months = expected["months"].as_object().unwrap();
            assert_eq!(report["months"].as_object().unwrap().len(), months.len(), "{name}: months");
            for (month, figures) in months {
                let shown = &report["months"][month];
                assert_eq!(shown["statements"], figures["statements"], "{name} {month}");
                // The dashboard rounds each subject's minutes to a tenth.
                let subjects = shown["subjects"].as_object().unwrap();
                let minutes: f64 = subjects.values().map(|s| s["minutes"].as_f64().unwrap()).sum();
                let tolerance = 0.05 * subjects.len() as f64 + 1e-9;
                assert!(
                    (minutes - figures["minutes"].as_f64().unwrap()).abs() <= tolerance,
                    "{name} {month}: {minutes} min"
                );
            }
        },
    );
}

#[test]
fn switching_short_car_trips_to_the_bus_saves_what_the_trips_say() {
    let home = TestHome::new();
    install(&home, &[IMPORTER, FOOTPRINT]);
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);
    let input = r#"{"switch": {"from": "car", "to": "bus", "max_km": 15}}"#;
    let report = home.ok(&["--json", "run", FOOTPRINT, "--input", input]).json();
    let (mut trips, mut km) = (0, 0.0);
    for doc in home.docs(TRIP) {
        let trip_km = doc["body"]["distance_m"].as_f64().unwrap() / 1000.0;
        if doc["body"]["mode"] == "car" && trip_km <= 15.0 {
            trips += 1;
            km += trip_km;
        }
    }
    assert!(trips > 0);
    let s = &report["switch"];
    assert_eq!(s["trips"], trips);
    close(s["km"].as_f64().unwrap(), km, "km switched");
    close(s["kg_co2e_saved"].as_f64().unwrap(), km * (0.193 - 0.113), "CO2 saved");
    let err = home.run(&["run", FOOTPRINT, "--input", r#"{"switch": {"from": "car", "to": "rocket"}}"#]);
    assert!(err.one_line_error().contains("no emission factor for mode `rocket`"));
}

/// The trips' ISO week (`2026-W10`), computed here with the `time` crate.
fn iso_week_of(trip: &Value) -> String {
    let date = time::Date::parse(
        trip["body"]["date"].as_str().unwrap(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap();
    let (year, week, _) = date.to_iso_week_date();
    format!("{year}-W{week:02}")
}

#[test]
fn the_mobility_survey_answer_counts_each_week_s_trips_per_mode_and_sends_nothing() {
    let home = TestHome::new();
    install(&home, &[IMPORTER, DONATION]);
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);
    let out = home.ok(&["--json", "run", DONATION]).json();

    let mut weeks: BTreeMap<String, BTreeMap<String, (u64, f64)>> = BTreeMap::new();
    for doc in home.docs(TRIP) {
        let cell = weeks
            .entry(iso_week_of(&doc))
            .or_default()
            .entry(doc["body"]["mode"].as_str().unwrap().to_owned())
            .or_default();
        cell.0 += 1;
        cell.1 += doc["body"]["distance_m"].as_f64().unwrap() / 1000.0;
    }
    assert!(weeks.len() >= 2, "the sample trips span weeks");
    for (week, modes) in &weeks {
        for (mode, (trips, km)) in modes {
            let cell = &out["weeks"][week][mode];
            assert_eq!(cell["trips"], *trips, "{week} {mode}: {out}");
            let found = cell["km"].as_f64().unwrap();
            assert!(
                (found - km).abs() <= 0.05 + 1e-9,
                "{week} {mode}: the app says {found} km (to 0.1), the test computes {km}"
            );
        }
    }
    let survey_week =
        home.ok(&["--json", "run", DONATION, "--input", r#"{"since": "2026-03-02", "until": "2026-03-08"}"#]).json();
    assert_eq!(survey_week["weeks"].as_object().unwrap().keys().collect::<Vec<_>>(), ["2026-W10"]);
    assert_eq!(survey_week["weeks"]["2026-W10"], out["weeks"]["2026-W10"]);

    assert_eq!(
        home.ok(&["--json", "outbox"]).json(),
        json!([]),
        "the survey's answer leaves only through its campaign"
    );
}

#[test]
fn the_mobility_allowance_sends_only_days_cycled_per_month_and_only_once_approved() {
    // A stand-in for the Mon Compte Mobilité platform, on 127.0.0.1.
    let server = http_receiver();
    let platform = format!("http://127.0.0.1:{}/forfait-mobilites-durables", server.port);
    let received = server.received;

    let home = TestHome::new();
    install(&home, &[IMPORTER]);
    home.ok(&["import", IMPORTER, sample_gpx().to_str().unwrap()]);
    // The sample app, with a manifest naming this test's server, signed by a key the home trusts.
    let keys = tempfile::tempdir().unwrap();
    let publisher = Keys::generate(&home, keys.path(), "platform");
    home.ok(&["trust", "add", &publisher.public()]);
    let manifest = std::fs::read_to_string(repo().join("manifests/mobility-allowance.toml"))
        .unwrap()
        .replace("https://moncomptemobilite.example/api/forfait-mobilites-durables", &platform);
    let package = home.path().join("allowance.dpkg");
    pack(&home, &manifest, &component_of(&sample_package("mobility-allowance")), &publisher, &package);
    home.install(&package, &["all"]);

    let out = home.ok(&["--json", "run", ALLOWANCE, "--input", &json!({ "destination": platform }).to_string()]).json();
    assert!(received.try_recv().is_err(), "nothing is sent by running the app");
    let item = &home.ok(&["--json", "outbox"]).json()[0];
    assert_eq!(item["status"]["state"], "pending");
    let payload: Value = serde_json::from_str(item["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload, out["payload"], "the app reports what it queued");

    // Days with a bike trip per month, computed here from the trips: nothing else.
    let mut days: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for doc in home.docs(TRIP).iter().filter(|d| d["body"]["mode"] == "bike") {
        let date = doc["body"]["date"].as_str().unwrap();
        days.entry(date[..7].to_owned()).or_default().insert(date.to_owned());
    }
    let months: BTreeMap<String, Value> = days.into_iter().map(|(m, d)| (m, json!({ "bike_days": d.len() }))).collect();
    assert_eq!(payload, json!({ "declaration": "forfait-mobilites-durables", "year": 2026, "months": months }));

    let id = item["id"].to_string();
    home.ok(&["approve", &id]);
    let (_, _, body) = received.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
    let body = String::from_utf8(body).unwrap();
    assert_eq!(body, item["payload"].as_str().unwrap());
    let summary = home.ok(&["audit", "--summary"]).stdout;
    assert!(summary.contains(&format!("{ALLOWANCE} sent 1 time(s) to {platform}")), "{summary}");
}

/// Imports each file of `tests/fixtures/corpus/<format>/` (at least 10) into
/// a fresh home with `apps` installed, the first being the importer. A file
/// whose expectations say `refused` must be refused with that text, writing
/// nothing to `doctype`; every other file is imported (the other apps'
/// triggers run on it without failing) and handed to `check` with its
/// expectations and the import's summary.
fn for_each_corpus_file(
    format: &str,
    apps: &[&str],
    doctype: &str,
    mut check: impl FnMut(&str, &std::path::Path, &Value, &TestHome, Value),
) {
    let expectations: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_corpus(format, "expectations.json")).unwrap()).unwrap();
    let files = expectations["files"].as_object().unwrap();
    assert!(files.len() >= 10, "the {format} corpus holds at least 10 files");
    for (name, expected) in files {
        let path = fixture_corpus(format, name);
        let home = TestHome::new();
        install(&home, apps);
        if let Some(refusal) = expected["refused"].as_str() {
            let run = home.run(&["import", apps[0], path.to_str().unwrap()]);
            assert!(run.one_line_error().contains(refusal), "{name}: {}", run.one_line_error());
            assert_eq!(count(&home, doctype), 0, "{name}: a refused file writes nothing");
            continue;
        }
        let imported = home.ok(&["--json", "import", apps[0], path.to_str().unwrap()]);
        // The other apps' triggers ran on what came in, and none failed.
        assert!(!imported.stderr.contains(r#""ok":false"#), "{name}: a trigger failed: {}", imported.stderr);
        check(name, &path, expected, &home, imported.json());
    }
}

/// The load-curve intervals of an Enedis export, recomputed from the file
/// alone: each reading is the average power of the interval ending at its
/// time, and the interval is the step the section's header declares (`Pas
/// en minutes`), else the time since the row before (the first row of a
/// section: the time to the next). Returns each interval's start (in the
/// meter's local time) and energy in kWh.
fn load_curve_intervals_from_file(path: &std::path::Path) -> Vec<(time::OffsetDateTime, f64)> {
    use time::format_description::well_known::Rfc3339;
    let text = std::fs::read_to_string(path).unwrap();
    // Each load-curve section: its declared step, and its rows (time, power).
    type Section = (Option<i64>, Vec<(time::OffsetDateTime, Option<f64>)>);
    let mut sections: Vec<Section> = Vec::new();
    let mut in_curve = false;
    for line in text.trim_start_matches('\u{feff}').lines().map(str::trim) {
        let cells: Vec<&str> = line.split(';').collect();
        if cells.len() > 1 && cells[1] == "Courbe de charge" {
            in_curve = true;
            sections.push((cells.get(8).and_then(|pas| pas.parse().ok()), Vec::new()));
        } else if cells[0].starts_with("Identifiant PRM") {
            in_curve = false;
        } else if let (true, Ok(at)) = (in_curve, time::OffsetDateTime::parse(cells[0], &Rfc3339)) {
            let value = cells.get(1).filter(|v| !v.is_empty()).map(|v| v.replace(',', ".").parse::<f64>().unwrap());
            sections.last_mut().unwrap().1.push((at, value));
        }
    }
    let mut intervals = Vec::new();
    for (declared, rows) in sections {
        for (i, (at, value)) in rows.iter().enumerate() {
            let minutes = match declared {
                Some(step) => step,
                None if i > 0 => (*at - rows[i - 1].0).whole_minutes(),
                None => (rows[1].0 - *at).whole_minutes(),
            };
            if let (Some(watts), true) = (value, minutes > 0) {
                intervals.push((*at - time::Duration::minutes(minutes), watts * minutes as f64 / 60.0 / 1000.0));
            }
        }
    }
    intervals
}

/// kWh per local day of the load-curve sections of an Enedis export.
fn load_curve_kwh_from_file(path: &std::path::Path) -> BTreeMap<String, f64> {
    let mut days = BTreeMap::new();
    for (start, kwh) in load_curve_intervals_from_file(path) {
        *days.entry(start.date().to_string()).or_insert(0.0) += kwh;
    }
    days
}

/// Every Linky export of the corpus gives the figures its expectations file
/// states (load curves at 10, 15, 30 and 60 minutes, a step that changes mid-file,
/// DST days, multi-register indexes, maximum power, several sections, a header
/// alone), or is refused naming the line. The load curves' kWh are also
/// recomputed here from the files, so the expectations cannot drift from them.
#[test]
fn linky_corpus_gives_the_expected_figures() {
    for_each_corpus_file(
        "linky",
        &[ENERGY_IMPORTER, ENERGY_INSIGHTS],
        "io.domicile.energy.reading",
        |name, path, expected, home, summary| {
            assert_eq!(summary["readings"], expected["readings"], "{name}: readings");
            assert_eq!(summary["missing_values"], expected["missing_values"], "{name}: rows without a value");
            assert_eq!(summary["missing_rows"], expected["missing_rows"], "{name}: rows missing from the grid");
            assert_eq!(summary["calendar_periods"], expected["calendar_periods"], "{name}: calendar periods");
            // What the file covers, so that a cut is visible: its first and last reading.
            let mut times: Vec<(i128, String)> = home
                .docs("io.domicile.energy.reading")
                .iter()
                .map(|d| {
                    let at = d["body"]["at"].as_str().unwrap().to_owned();
                    let parsed = time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339);
                    (parsed.unwrap().unix_timestamp_nanos(), at)
                })
                .collect();
            times.sort();
            // Rows without a value are part of what the file covers; otherwise it is exactly its readings' span.
            let valueless = expected["missing_values"].as_u64().unwrap() > 0;
            if let (Some(first), Some(last), false) = (times.first(), times.last(), valueless) {
                assert_eq!(
                    (summary["first"].as_str(), summary["last"].as_str()),
                    (Some(&*first.1), Some(&*last.1)),
                    "{name}"
                );
            }
            assert_eq!(
                count(home, "io.domicile.energy.reading") as u64,
                expected["readings"].as_u64().unwrap(),
                "{name}"
            );

            let expected_days = expected["kwh_by_day"].as_object().unwrap();
            if name.starts_with("load-curve") {
                let from_file = load_curve_kwh_from_file(path);
                let days: Vec<&String> = from_file.keys().collect();
                assert_eq!(days, expected_days.keys().collect::<Vec<_>>(), "{name}: days");
                for (day, kwh) in &from_file {
                    close(
                        expected_days[day].as_f64().unwrap(),
                        (kwh * 1000.0).round() / 1000.0,
                        &format!("{name} {day}"),
                    );
                }
            }
            if expected["readings"] == 0 {
                return;
            }
            // Every file with readings gives a report, a file of maximum power alone too.
            let report = home.ok(&["--json", "run", ENERGY_INSIGHTS]).json();
            if summary["meters"].as_array().is_some_and(|m| !m.is_empty()) && name.contains("max-power") {
                assert!(report["highest_power"]["va"].as_f64().is_some(), "{name}: {report}");
            }
            let reported = report["days"].as_object().unwrap();
            assert_eq!(reported.keys().collect::<Vec<_>>(), expected_days.keys().collect::<Vec<_>>(), "{name}: days");
            for (day, kwh) in expected_days {
                close(reported[day].as_f64().unwrap(), kwh.as_f64().unwrap(), &format!("{name} {day}"));
            }
        },
    );
}

const HEALTH_IMPORTER: &str = "io.domicile.sample.health-importer";
const HEALTH_SPENDING: &str = "io.domicile.sample.health-spending";
const CARE: &str = "io.domicile.health.care";

/// Every FHIR file of the corpus (the ExplanationOfBenefit responses of CMS's
/// Blue Button server for each claim type, one bundle of them all, a bundle
/// in Synthea's layout, and an export cut off) gives the cares its
/// expectations state (computed by `expect.py`): the kind of care from every
/// coding of the claim's type, the cost of a Part D drug claim, what the
/// person was left to pay, a payer named only by its identifier; or is
/// refused saying why.
#[test]
fn health_corpus_gives_the_expected_figures() {
    for_each_corpus_file("fhir", &[HEALTH_IMPORTER, HEALTH_SPENDING], CARE, |name, _path, expected, home, summary| {
        assert_eq!(summary["cares"], expected["cares"], "{name}: {summary}");
        let mut stored: Vec<Value> = home
            .docs(CARE)
            .into_iter()
            .map(|d| {
                let b = &d["body"];
                json!({
                    "date": b["date"], "kind": b["kind"], "billed": b["billed"], "reimbursed": b["reimbursed"],
                    "remaining": b["remaining"], "payer": b["payers"][0]["name"],
                })
            })
            .collect();
        let key = |c: &Value| (c["date"].to_string(), c["kind"].to_string(), c["billed"].as_f64().unwrap_or(0.0));
        stored.sort_by(|a, b| key(a).partial_cmp(&key(b)).unwrap());
        assert_eq!(Value::Array(stored), expected["each"], "{name}");
        home.ok(&["--json", "run", HEALTH_SPENDING]);
    });
}

/// The amount of a FHIR total (or, without totals, of the items'
/// adjudications) of `category`, with its currency.
fn fhir_amount(eob: &Value, category: &str) -> Option<(f64, Option<String>)> {
    let is = |c: &Value| c["category"]["coding"].as_array().is_some_and(|cs| cs.iter().any(|x| x["code"] == category));
    let money = |m: &Value| (m["value"].as_f64().unwrap(), m["currency"].as_str().map(str::to_owned));
    if let Some(t) = eob["total"].as_array().and_then(|ts| ts.iter().find(|t| is(t))) {
        return Some(money(&t["amount"]));
    }
    let amounts: Vec<(f64, Option<String>)> = eob["item"]
        .as_array()?
        .iter()
        .flat_map(|i| i["adjudication"].as_array().into_iter().flatten())
        .filter(|a| is(a))
        .map(|a| money(&a["amount"]))
        .collect();
    (!amounts.is_empty()).then(|| (amounts.iter().map(|a| a.0).sum(), amounts[0].1.clone()))
}

/// The health export imported, and the spending recomputed from the file:
/// one care per claim however many insurers decided on it, billed once,
/// what is left per currency (never added across currencies), pending
/// claims apart, withdrawn decisions out. The service sees no diagnosis,
/// practitioner or insurer, and cannot be granted them.
#[test]
fn health_spending_is_what_the_fhir_export_says_was_left_to_pay() {
    let home = TestHome::new();
    home.install(&sample_package("health-importer"), &["all"]);
    let file = sample_data("fhir-health-2026.json");
    let summary = home.ok(&["--json", "import", HEALTH_IMPORTER, file.to_str().unwrap()]).json();
    assert_eq!((summary["cares"].as_u64(), summary["withdrawn"].as_u64()), (Some(9), Some(1)), "{summary}");
    home.ok(&["import", HEALTH_IMPORTER, file.to_str().unwrap()]);
    assert_eq!(count(&home, CARE), 9, "importing again changes nothing");
    // The resident's documents keep everything the export said.
    let cares: Vec<Value> = home.docs(CARE).into_iter().map(|d| d["body"].clone()).collect();
    let gp = cares.iter().find(|c| c["reference"] == "Claim/c-gp").unwrap();
    assert_eq!(gp["diagnoses"], json!(["J06.9 Acute upper respiratory infection, unspecified"]));
    assert_eq!(gp["provider"], "Dr Marie Durand");

    // From the file: each decision, grouped by the claim it names.
    let bundle: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let resources: Vec<&Value> = bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).collect();
    let mut groups: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for eob in resources.iter().filter(|r| r["resourceType"] == "ExplanationOfBenefit" && r["status"] == "active") {
        let key = match eob["claim"]["reference"].as_str() {
            Some(r) => r.rsplit('/').next().unwrap().to_owned(),
            None => eob["id"].as_str().unwrap().to_owned(),
        };
        groups.entry(key).or_default().push(eob);
    }
    let mut left: BTreeMap<String, f64> = BTreeMap::new();
    let mut left_by_kind_month: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (claim, eobs) in &groups {
        let billed = eobs.iter().filter_map(|e| fhir_amount(e, "submitted")).map(|a| a.0).fold(0.0, f64::max);
        let paid: f64 = eobs.iter().map(|e| fhir_amount(e, "benefit").unwrap().0).sum();
        let currency =
            eobs.iter().find_map(|e| fhir_amount(e, "submitted").and_then(|a| a.1)).unwrap_or("unstated".into());
        *left.entry(currency.clone()).or_default() += (billed - paid).max(0.0);
        if currency == "EUR" {
            let care = cares.iter().find(|c| c["reference"].as_str().unwrap().ends_with(&format!("/{claim}"))).unwrap();
            let month = eobs[0]["billablePeriod"]["start"].as_str().unwrap()[..7].to_owned();
            *left_by_kind_month.entry((month, care["kind"].as_str().unwrap().to_owned())).or_default() +=
                (billed - paid).max(0.0);
        }
    }
    let pending: Vec<&&Value> = resources
        .iter()
        .filter(|r| r["resourceType"] == "Claim" && !groups.contains_key(r["id"].as_str().unwrap()))
        .collect();
    assert_eq!(pending.len(), 1);

    home.install(&sample_package("health-spending"), &["all"]);
    let report = home.ok(&["--json", "run", HEALTH_SPENDING]).json();
    for (currency, total) in &left {
        close(report["currencies"][currency]["total"]["remaining"].as_f64().unwrap(), *total, currency);
    }
    assert_eq!(report["currencies"].as_object().unwrap().len(), left.len(), "{report}");
    for ((month, kind), total) in &left_by_kind_month {
        close(
            report["currencies"]["EUR"]["months"][month][kind]["remaining"].as_f64().unwrap(),
            *total,
            &format!("{month} {kind}"),
        );
    }
    assert_eq!(report["currencies"]["EUR"]["pending"]["cares"], 1);
    close(report["currencies"]["EUR"]["pending"]["billed"].as_f64().unwrap(), 16.13 * 3.0, "pending physiotherapy");
    // The view shows the same: what is left in EUR, and the other currencies apart.
    close(block(&report, "number", "Left for you to pay")["value"].as_f64().unwrap(), left["EUR"], "headline");
    let words = report["view"].to_string();
    assert!(words.contains("1 care(s) in CHF: 125 left for you of 150 billed"), "{words}");

    // What the service read: never a diagnosis, a practitioner or an insurer.
    let reads = home.ok(&["--json", "audit", "--app", HEALTH_SPENDING]).stdout;
    assert!(!reads.contains("Durand") && !reads.contains("J06"), "{reads}");
    let denied =
        home.run(&["grant", HEALTH_SPENDING, "io.domicile.health.care:read:diagnoses"]).one_line_error().to_owned();
    assert!(denied.contains("diagnoses"), "{denied}");
}
