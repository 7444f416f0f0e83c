//! `domicile demo`: a demo home with the sample apps and sample data,
//! walked through step by step: mobility, energy, budget, learning,
//! health and a declaration to an employer that waits in the outbox.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use domicile_home::{Home, Password};
use domicile_host::Clock;
use domicile_manifest::{AppId, Grants};
use domicile_store::{AuditFilter, ResidentName};

use crate::{
    count, create_with_sample_catalogue, sample_key, BANK_CSV, BANK_OFX, DAILY_INDEX, FHIR, GPX, LOAD_CURVE, XAPI,
};

const GPX_IMPORTER: &str = "io.domicile.sample.gpx-importer";
const FOOTPRINT: &str = "io.domicile.sample.mobility-footprint";
const ENERGY_IMPORTER: &str = "io.domicile.sample.energy-importer";
const ENERGY_INSIGHTS: &str = "io.domicile.sample.energy-insights";
const BANK_IMPORTER: &str = "io.domicile.sample.bank-importer";
const BUDGET: &str = "io.domicile.sample.budget";
const LEARNING_IMPORTER: &str = "io.domicile.sample.learning-importer";
const LEARNING_DASHBOARD: &str = "io.domicile.sample.learning-dashboard";
const ALLOWANCE: &str = "io.domicile.sample.mobility-allowance";
const TARIFF_CHECK: &str = "io.domicile.sample.tariff-check";
const RECURRING_PAYMENTS: &str = "io.domicile.sample.recurring-payments";
const HEALTH_IMPORTER: &str = "io.domicile.sample.health-importer";
const HEALTH_SPENDING: &str = "io.domicile.sample.health-spending";

/// Marks a directory as made by the demo, so a later demo may replace it.
const MARKER: &str = ".domicile-demo";

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

/// What `domicile demo` was asked.
pub struct DemoOptions {
    /// Where to make the demo home (default `./domicile-demo`).
    pub dir: Option<PathBuf>,
    /// The web UI will serve the home next (the closing words differ).
    pub then_serve: bool,
    /// The time the apps see.
    pub clock: Clock,
}

/// Makes the demo home and walks through it on stdout; returns the home,
/// for the web UI to serve when asked.
pub async fn run(options: DemoOptions) -> Result<Home> {
    let DemoOptions { dir, then_serve, clock } = options;
    let dir = dir.unwrap_or_else(|| PathBuf::from("domicile-demo"));
    prepare_dir(&dir)?;
    println!("domicile demo: a personal data home in {}", dir.display());

    step(1, "Create the home, with one resident, `me`");
    let me: ResidentName = "me".parse()?;
    step(2, "Trust the key of the sample catalogue (it vouches for the publishers of the apps it lists)");
    let (home, catalogue) = create_with_sample_catalogue(&dir, &me, clock)?;
    std::fs::write(dir.join(MARKER), b"created by `domicile demo`; a new demo replaces this directory\n")?;
    let space = home.resident(None)?;
    println!("    trusted {} for catalogues", sample_key()?);
    println!("    added the catalogue `{}`: its signed index verified", catalogue.index().name);

    step(3, "Install the sample apps from the catalogue: digest and signature first, then what each asks and why");
    let runtime = home.runtime()?;
    for app in &catalogue.index().apps {
        let trust = home.trust()?;
        let fetched = catalogue.fetch(&app.id, None, &trust)?;
        let prepared = runtime.prepare_install(&space, &trust, fetched.bytes, Some(&fetched.app.publisher))?;
        let manifest = prepared.manifest().clone();
        println!("    {} {}", manifest.name, manifest.version);
        for p in &manifest.permissions {
            let verbs: Vec<&str> = p.access.iter().map(|a| a.as_str()).collect();
            let fields = p
                .fields
                .as_ref()
                .map(|f| format!(" ({})", f.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")));
            println!("      {} {}{}: {}", verbs.join("+"), p.doctype, fields.unwrap_or_default(), p.purpose);
        }
        if let Some(egress) = &manifest.egress {
            println!("      may ask you to send to {}: {}", egress.destinations[0], egress.purpose);
        }
        for t in &manifest.triggers {
            println!("      runs on its own {}: {}", t.when(), t.purpose);
        }
        let installed = runtime.install(&space, prepared, Grants::all(&manifest))?;
        home.set_up_triggers(&space, &installed)?;
    }
    // An import, then the apps it makes run on their own (new data), as
    // `domicile import` runs them; what they tell the resident is shown.
    let import = |importer: &'static str, (name, bytes): (&'static str, &'static [u8])| {
        let space = space.clone();
        let home = &home;
        async move {
            let summary = runtime.run_importer(&space, &importer.parse()?, name, bytes).await?;
            println!("    {name}: {summary}");
            let told_before = space.notifications()?.len();
            for run in home.run_due_triggers(&space).await? {
                let outcome = run.outcome.err().map(|e| format!(" and failed: {e}")).unwrap_or_default();
                println!("    then {} ran on its own ({}){outcome}", run.app, run.when);
            }
            for note in space.notifications()?.iter().skip(told_before) {
                println!("      it tells you: \"{}: {}\"", note.title, note.body);
            }
            anyhow::Ok(())
        }
    };
    let run = |app: &'static str, input: &'static str| {
        let space = space.clone();
        async move {
            let output = runtime.run_service(&space, &app.parse::<AppId>()?, input).await?;
            anyhow::Ok(serde_json::from_str::<serde_json::Value>(&output)?)
        }
    };

    step(
        4,
        "Mobility: import a week of GPS tracks, then the CO2 of the trips, and what cycling short car trips would save",
    );
    import(GPX_IMPORTER, GPX).await?;
    import(GPX_IMPORTER, GPX).await?;
    let trips = count(&space, "io.domicile.mobility.trip")?;
    println!("    imported twice, still {trips} trips: imports are idempotent");
    let footprint = run(FOOTPRINT, r#"{"switch": {"from": "car", "to": "bike", "max_km": 15}}"#).await?;
    print_footprint(&footprint);

    step(5, "Energy: import the Linky load curve and a year of daily indexes, then the insights");
    import(ENERGY_IMPORTER, LOAD_CURVE).await?;
    import(ENERGY_IMPORTER, DAILY_INDEX).await?;
    let energy =
        run(ENERGY_INSIGHTS, r#"{"tariff": {"eur_per_kwh": 0.2516, "subscription_eur_per_month": 15.65}}"#).await?;
    print_energy(&energy);
    println!("    and an app written in Python, on the same load curve:");
    print_tariff_check(&run(TARIFF_CHECK, "{}").await?);

    step(6, "Budget: import a bank statement (OFX) and the next month's CSV, then where the money went");
    import(BANK_IMPORTER, BANK_OFX).await?;
    import(BANK_IMPORTER, BANK_CSV).await?;
    println!("    drawn from the view the budget app returns, as `domicile run` shows it:");
    print_view(&run(BUDGET, "{}").await?);
    println!("    and an app written in JavaScript, on the same operations:");
    print_recurring_payments(&run(RECURRING_PAYMENTS, "{}").await?);

    step(7, "Learning: import a learner's records from school, conservatory and a MOOC (xAPI), then the dashboard");
    import(LEARNING_IMPORTER, XAPI).await?;
    print_learning(&run(LEARNING_DASHBOARD, "{}").await?);

    step(8, "Health: import an insurer's FHIR export, then what your care cost and what was left for you");
    import(HEALTH_IMPORTER, FHIR).await?;
    println!("    drawn from the view the health spending app returns (it cannot read diagnoses or practitioners):");
    print_view(&run(HEALTH_SPENDING, "{}").await?);

    step(9, "Mobility allowance: the days you cycled, declared to your employer, go to your outbox, not out");
    let declaration = run(ALLOWANCE, "{}").await?;
    let item = space.outbox_item(declaration["outbox_id"].as_str().unwrap_or_default().parse()?)?;
    println!("    outbox item #{} for {}\n    why: {}", item.id, item.destination, item.purpose);
    println!("    exactly what would be sent: {}", item.payload);
    println!(
        "    nothing has left: `domicile approve {}` would send it, `domicile deny {}` discards it",
        item.id, item.id
    );

    step(10, "The audit log: every access an app made to your data, hash-chained");
    for line in space.audit_summary(&AuditFilter::default())? {
        println!("    {}", line.sentence());
    }
    let check = space.verify_audit()?;
    println!("    chain intact: {} entries, last hash {}…", check.entries, &check.head[..16]);

    let (d, on_path) = invocation();
    let h = dir.display();
    println!("\nDone. Explore the demo home:");
    println!("  {d} --home {h} catalogue list");
    println!("  {d} --home {h} apps");
    println!("  {d} --home {h} docs io.domicile.mobility.trip --where '{{\"mode\": \"bike\"}}'");
    println!("  {d} --home {h} run {BUDGET} --input '{{\"rules\": [{{\"contains\": \"LIBRAIRIE\", \"category\": \"leisure\"}}]}}'");
    println!("  {d} --home {h} outbox");
    println!("  {d} --home {h} revoke {FOOTPRINT} && {d} --home {h} run {FOOTPRINT}");
    println!("  {d} --home {h} audit --summary && {d} --home {h} audit verify");
    if !on_path {
        println!("  (`domicile` is not on your PATH: `cargo install --path runtime/cli --locked` puts it there)");
    }

    // The same home in a browser: `me` gets a password for the web UI.
    let password = home.set_password(&me, Password::Generate)?.context("a generated password is handed back")?;
    if then_serve {
        println!("\nThe web UI: sign in as `me` with the password {password} (Ctrl-C stops the server)");
    } else {
        println!("\nOr in a browser: `{d} --home {h} serve`, then open http://127.0.0.1:8080/");
        println!("  and sign in as `me` with the password {password}");
    }
    drop(space);
    Ok(home)
}

/// The demo directory must be new, empty, or an earlier demo (replaced).
fn prepare_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if dir.join(MARKER).is_file() {
        return std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot replace the previous demo in {}", dir.display()));
    }
    if dir.read_dir().with_context(|| format!("cannot read {}", dir.display()))?.next().is_some() {
        bail!("{} exists and is not a previous demo; choose another directory with --dir", dir.display());
    }
    Ok(())
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn print_footprint(report: &serde_json::Value) {
    println!("    {:<8} {:<6} {:>5} {:>9} {:>10}", "month", "mode", "trips", "km", "kg CO2e");
    for (month, modes) in report["months"].as_object().into_iter().flatten() {
        for (mode, t) in modes.as_object().into_iter().flatten() {
            println!(
                "    {:<8} {:<6} {:>5} {:>9.1} {:>10.2}",
                month,
                mode,
                t["trips"],
                num(&t["km"]),
                num(&t["kg_co2e"])
            );
        }
    }
    println!("    total: {:.1} km, {:.2} kg CO2e", num(&report["total_km"]), num(&report["total_kg_co2e"]));
    let s = &report["switch"];
    println!(
        "    cycling the {} car trips of at most {} km ({:.1} km) would save {:.2} kg CO2e",
        s["trips"],
        s["max_km"],
        num(&s["km"]),
        num(&s["kg_co2e_saved"])
    );
}

fn print_energy(report: &serde_json::Value) {
    let months = report["months"].as_object().cloned().unwrap_or_default();
    if months.len() > 3 {
        println!("    ({} earlier months not shown)", months.len() - 3);
    }
    for (month, m) in months.iter().skip(months.len().saturating_sub(3)) {
        let mut line = format!("    {month}: {:>7.1} kWh over {:>2} days", num(&m["kwh"]), m["days"]);
        if let Some(cost) = m["cost_eur"].as_f64() {
            line.push_str(&format!(", about {cost:.2} EUR"));
        }
        if let Some(c) = m["same_days_last_year"].as_object() {
            line.push_str(&format!(
                "; same {} days last year: {:.1} kWh ({:+.1} %)",
                c["days"],
                num(&c["kwh_last_year"]),
                num(&c["change_pct"])
            ));
        }
        println!("{line}");
    }
    let peaks: Vec<String> = report["peak_hours"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| format!("{}h ({:.0} W)", p["hour"], num(&p["avg_w"])))
        .collect();
    println!("    base load {:.0} W; peak hours {}", num(&report["base_load_w"]), peaks.join(", "));
}

/// A service's view as `domicile run` draws it, indented under its step.
fn print_view(report: &serde_json::Value) {
    match domicile_view::check_output(report) {
        Ok(Some(view)) => {
            for line in domicile_view::text::render(&view, 76).lines() {
                println!("    {line}");
            }
        }
        _ => println!("    (no view)"),
    }
}

fn print_tariff_check(report: &serde_json::Value) {
    let prices: Vec<String> = report["options"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| format!("{} {:.2} EUR", o["option"].as_str().unwrap_or_default(), num(&o["total_eur"])))
        .collect();
    println!(
        "    {} days, {:.1} kWh of which {:.0} % in off-peak hours: {}",
        report["period"]["days"],
        num(&report["kwh"]),
        num(&report["off_peak_share"]) * 100.0,
        prices.join(", ")
    );
    println!(
        "    `{}` is cheaper by about {:.0} EUR a year; off-peak hours pay from {:.0} % of use in them",
        report["cheaper"].as_str().unwrap_or_default(),
        num(&report["saving_eur_per_year"]),
        num(&report["break_even_off_peak_share"]) * 100.0
    );
}

fn print_recurring_payments(report: &serde_json::Value) {
    for r in report["recurring"].as_array().into_iter().flatten() {
        println!(
            "    {:>8.2} EUR, usually on day {:>2} of the month: {}",
            num(&r["monthly_eur"]),
            r["day_of_month"],
            r["payee"].as_str().unwrap_or_default()
        );
    }
    println!(
        "    {:.2} EUR a month, {:.2} EUR a year, paid without asking each time",
        num(&report["monthly_eur"]),
        num(&report["yearly_eur"])
    );
}

fn print_learning(report: &serde_json::Value) {
    for (month, m) in report["months"].as_object().into_iter().flatten() {
        println!("    {month}: {} records", m["statements"]);
        for (subject, s) in m["subjects"].as_object().into_iter().flatten() {
            let score =
                s["avg_score"].as_f64().map(|v| format!(", average score {:.0} %", v * 100.0)).unwrap_or_default();
            println!(
                "      {subject:<9} {} done, {} passed, {} failed, {:.0} min{score}",
                s["completed"],
                s["passed"],
                s["failed"],
                num(&s["minutes"])
            );
        }
    }
}

/// How to call this very program from the current folder: `domicile` when
/// that is what the PATH finds, else its path (`target/release/domicile`
/// after `cargo run --release`); and whether the PATH finds it.
fn invocation() -> (String, bool) {
    let Ok(me) = std::env::current_exe().and_then(|p| p.canonicalize()) else { return ("domicile".into(), true) };
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .filter_map(|dir| dir.join("domicile").canonicalize().ok())
            .next()
            .is_some_and(|first| first == me)
    });
    if found {
        return ("domicile".into(), true);
    }
    let here = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
    let shown = match here.as_deref().and_then(|here| me.strip_prefix(here).ok()) {
        Some(relative) => relative.display().to_string(),
        None => me.display().to_string(),
    };
    (shown, false)
}
