//! `domicile bench`: what domicile costs, each figure measured in the same
//! run as its baseline, on a scratch home that is deleted afterwards.
//!
//! - an invocation of an empty service (new `Store`, instantiate, call)
//!   through the runtime, against raw wasmtime calling the same component
//!   with a bare linker;
//! - a guest scanning every trip of a doctype through the batched cursor,
//!   against the same aggregation in native Rust over the same store;
//! - the Linky importer on a generated load curve, against a native parse
//!   and insert of the same rows (same validation, same atomic import), and
//!   against raw sled storing the same documents with their index and
//!   change-feed entries, flushed once: the floor under any import;
//! - a loop of arithmetic with and without epoch interruption.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use domicile_home::Home;
use domicile_host::Clock;
use domicile_manifest::AppId;
use domicile_store::{Author, Change, Query, ResidentSpace, Selector};
use serde_json::{json, Value};

const BENCH_GUEST: &[u8] = include_bytes!("../../../tests/fixtures/packages/bench.dpkg");
const BENCH_APP: &str = "org.example.test.bench";
const ENERGY_IMPORTER: &str = "io.domicile.sample.energy-importer";
const TRIP: &str = "io.domicile.mobility.trip";
const READING: &str = "io.domicile.energy.reading";

pub struct BenchOptions {
    pub invocations: usize,
    pub documents: usize,
    pub rows: usize,
    /// Rounds of the arithmetic loop timed with and without epochs.
    pub spin: u64,
    pub json: bool,
}

/// Latency percentiles of a set of samples.
struct Latencies {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

/// The `q` quantile (0 to 1) of sorted, non-empty samples.
pub(crate) fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn latencies(mut samples: Vec<Duration>, total: Duration) -> Latencies {
    samples.sort();
    let at = |q| quantile(&samples, q);
    Latencies { p50: at(0.50), p99: at(0.99), per_second: samples.len() as f64 / total.as_secs_f64() }
}

fn wasm_error(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("raw wasmtime baseline: {e:#}")
}

pub(crate) fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn us(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}

fn ratio(a: f64, b: f64) -> f64 {
    (a / b * 100.0).round() / 100.0
}

pub async fn run(options: BenchOptions) -> Result<()> {
    let scratch = tempfile::tempdir().context("cannot create a scratch directory for the benchmark")?;
    let dir = scratch.path();
    let home = Home::create(dir, &"bench".parse()?, Clock::System)?;
    // The benchmark's own caps: large inputs are the point. And its own
    // artifact cache, so that an install it times compiles (the user's
    // shared cache would hold the apps already).
    let cache = toml::Value::String(dir.join("cache").display().to_string());
    std::fs::write(
        dir.join("config.toml"),
        format!("[engine]\nartifact-cache = {cache}\n\n[limits]\ndefault-memory-mib = 2048\nmax-memory-mib = 2048\ndefault-cpu-ms = 600000\nmax-cpu-ms = 600000\ndefault-wall-ms = 600000\nmax-wall-ms = 600000\ndefault-host-calls = 50000000\nmax-host-calls = 50000000\ndefault-documents = 50000000\nmax-documents = 50000000\n"),
    )?;
    let key = domicile_samples::sample_key()?;
    home.trust()?.add(key, "domicile samples", &[])?;
    let space = home.resident(None)?;
    let runtime = home.runtime()?;
    let bench_app: AppId = BENCH_APP.parse()?;
    let importer: AppId = ENERGY_IMPORTER.parse()?;
    for package in [BENCH_GUEST.to_vec(), domicile_samples::sample_package("energy-importer")?] {
        domicile_samples::install_granting_all(&home, &space, package)?;
    }
    let component = domicile_package::unseal(BENCH_GUEST)?.verify_with(&key)?.component_bytes().to_vec();
    let mut report = serde_json::Map::new();

    // 1. An empty invocation, interleaved with the same call on raw
    // wasmtime (default settings, and domicile's engine settings) so that
    // all three see the same machine.
    eprintln!("bench: {} empty invocations, through domicile and through raw wasmtime", options.invocations);
    let raw_default = raw::Runner::new(&wasmtime::Config::new(), &component).map_err(wasm_error)?;
    let mut pooled = domicile_host::engine_config(16, 512 * 1024 * 1024);
    pooled.epoch_interruption(false);
    let raw_pooled = raw::Runner::new(&pooled, &component).map_err(wasm_error)?;
    for _ in 0..50 {
        runtime.run_service(&space, &bench_app, "{}").await?;
        raw_default.once().await.map_err(wasm_error)?;
        raw_pooled.once().await.map_err(wasm_error)?;
    }
    let n = options.invocations;
    let (mut ours, mut raw, mut raw_p) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut ours_total, mut raw_total, mut raw_p_total) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..n {
        let t = Instant::now();
        runtime.run_service(&space, &bench_app, "{}").await?;
        ours.push(t.elapsed());
        let t = Instant::now();
        raw_default.once().await.map_err(wasm_error)?;
        raw.push(t.elapsed());
        let t = Instant::now();
        raw_pooled.once().await.map_err(wasm_error)?;
        raw_p.push(t.elapsed());
        ours_total += ours[ours.len() - 1];
        raw_total += raw[raw.len() - 1];
        raw_p_total += raw_p[raw_p.len() - 1];
    }
    let (ours, raw, raw_pooled) =
        (latencies(ours, ours_total), latencies(raw, raw_total), latencies(raw_p, raw_p_total));
    report.insert(
        "trivial_invocation".into(),
        json!({
            "domicile_p50_us": us(ours.p50), "domicile_p99_us": us(ours.p99), "domicile_per_s": ours.per_second.round() as u64,
            "raw_wasmtime_p50_us": us(raw.p50), "raw_wasmtime_p99_us": us(raw.p99), "raw_wasmtime_per_s": raw.per_second.round() as u64,
            "ratio_p50": ratio(us(ours.p50), us(raw.p50)),
            "raw_wasmtime_pooled_p50_us": us(raw_pooled.p50), "raw_wasmtime_pooled_p99_us": us(raw_pooled.p99),
            "ratio_p50_vs_pooled": ratio(us(ours.p50), us(raw_pooled.p50)),
            "pagemap_scan": wasmtime::PoolingAllocationConfig::is_pagemap_scan_available(),
        }),
    );

    // 2. A scan of every trip through the cursor, against native Rust.
    eprintln!("bench: writing {} trips, then scanning them from a guest and natively", options.documents);
    write_trips(&space, options.documents)?;
    let guest_output = runtime.run_service(&space, &bench_app, r#"{"scan": true}"#).await?;
    let native_output = native_scan(&space)?;
    anyhow::ensure!(same_totals(&guest_output, &native_output)?, "the guest and native scans disagree");
    let (mut guest, mut native) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        runtime.run_service(&space, &bench_app, r#"{"scan": true}"#).await?;
        guest.push(t.elapsed());
        let t = Instant::now();
        native_scan(&space)?;
        native.push(t.elapsed());
    }
    let (guest, native) = (median(guest), median(native));
    report.insert(
        "scan".into(),
        json!({ "documents": options.documents, "guest_ms": ms(guest), "native_ms": ms(native), "ratio": ratio(ms(guest), ms(native)) }),
    );

    // 3. An import of a Linky load curve, against native parse and insert.
    eprintln!("bench: importing a load curve of {} rows, with the importer app and natively", options.rows);
    let csv = load_curve(options.rows);
    let t = Instant::now();
    runtime.run_importer(&space, &importer, "bench.csv", &csv).await?;
    let guest = t.elapsed();
    let native_space = home.store().create_resident(&"native".parse()?)?;
    let t = Instant::now();
    native_import(&native_space, &csv)?;
    let native = t.elapsed();
    anyhow::ensure!(
        domicile_samples::count(&space, READING)? == domicile_samples::count(&native_space, READING)?,
        "the two imports stored different counts"
    );
    let raw_sled = raw_sled_import(&scratch.path().join("raw-sled"), &csv)?;
    let (guest_rate, native_rate, raw_rate) = (
        options.rows as f64 / guest.as_secs_f64(),
        options.rows as f64 / native.as_secs_f64(),
        options.rows as f64 / raw_sled.as_secs_f64(),
    );
    report.insert(
        "import".into(),
        json!({
            "rows": options.rows, "guest_s": secs(guest), "native_s": secs(native),
            "guest_rows_per_s": guest_rate.round() as u64, "native_rows_per_s": native_rate.round() as u64,
            "throughput_vs_native": ratio(guest_rate, native_rate),
            "raw_sled_s": secs(raw_sled), "raw_sled_rows_per_s": raw_rate.round() as u64,
            "throughput_vs_raw_sled": ratio(guest_rate, raw_rate),
        }),
    );

    // 4. Epoch interruption.
    eprintln!("bench: arithmetic with and without epoch interruption");
    let (with, without) = raw::epoch_cost(&component, options.spin).await.map_err(wasm_error)?;
    report.insert(
        "epoch_interruption".into(),
        json!({ "with_ms": ms(with), "without_ms": ms(without), "overhead_pct": ((with.as_secs_f64() / without.as_secs_f64() - 1.0) * 1000.0).round() / 10.0 }),
    );

    // 5. Apps in Python and JavaScript: install (compilation of an 18 MB or
    // 12 MB component) and runs on the sample data, against the Rust app
    // that reads the same documents, in the same space and the same run.
    eprintln!("bench: the Python and JavaScript sample apps, installed and run against Rust apps on the same data");
    report.insert("languages".into(), languages(&home, options.invocations.min(500)).await?);

    crate::emit(&Value::Object(report), options.json, print_table);
    Ok(())
}

/// Install time and run latency of the Python and JavaScript sample apps,
/// each next to a Rust sample app reading the same documents.
async fn languages(home: &domicile_home::Home, runs: usize) -> Result<Value> {
    let space = home.store().create_resident(&"languages".parse()?)?;
    let runtime = home.runtime()?;
    let mut installs = serde_json::Map::new();
    for app in ["energy-importer", "bank-importer", "energy-insights", "budget", "tariff-check", "recurring-payments"] {
        let t = Instant::now();
        domicile_samples::install_granting_all(home, &space, domicile_samples::sample_package(app)?)?;
        installs.insert(app.into(), json!(ms(t.elapsed())));
    }
    for (importer, (name, bytes)) in [
        (ENERGY_IMPORTER, domicile_samples::LOAD_CURVE),
        ("io.domicile.sample.bank-importer", domicile_samples::BANK_OFX),
        ("io.domicile.sample.bank-importer", domicile_samples::BANK_CSV),
    ] {
        runtime.run_importer(&space, &importer.parse()?, name, bytes).await?;
    }
    let mut pairs = Vec::new();
    for (lang, app, rust_app) in
        [("python", "tariff-check", "energy-insights"), ("javascript", "recurring-payments", "budget")]
    {
        let (app_id, rust_id): (AppId, AppId) =
            (format!("io.domicile.sample.{app}").parse()?, format!("io.domicile.sample.{rust_app}").parse()?);
        for _ in 0..10 {
            runtime.run_service(&space, &app_id, "{}").await?;
            runtime.run_service(&space, &rust_id, "{}").await?;
        }
        let (mut theirs, mut ours) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
        let (mut theirs_total, mut ours_total) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..runs {
            let t = Instant::now();
            runtime.run_service(&space, &app_id, "{}").await?;
            theirs.push(t.elapsed());
            theirs_total += t.elapsed();
            let t = Instant::now();
            runtime.run_service(&space, &rust_id, "{}").await?;
            ours.push(t.elapsed());
            ours_total += t.elapsed();
        }
        let (theirs, ours) = (latencies(theirs, theirs_total), latencies(ours, ours_total));
        // The floor of a run: instantiate, call, return. Both apps refuse an
        // unknown input field before reading anything.
        let mut floor = Vec::with_capacity(runs);
        let mut floor_total = Duration::ZERO;
        for _ in 0..runs {
            let t = Instant::now();
            let refused = runtime.run_service(&space, &app_id, r#"{"not-an-option": 1}"#).await;
            anyhow::ensure!(refused.is_err(), "{app} accepted an unknown input field");
            floor.push(t.elapsed());
            floor_total += t.elapsed();
        }
        let floor = latencies(floor, floor_total);
        pairs.push(json!({
            "language": lang, "app": app, "install_ms": installs[app],
            "p50_ms": ms(theirs.p50), "p99_ms": ms(theirs.p99),
            "empty_run_p50_ms": ms(floor.p50), "empty_run_p99_ms": ms(floor.p99),
            "rust_app": rust_app, "rust_install_ms": installs[rust_app],
            "rust_p50_ms": ms(ours.p50), "rust_p99_ms": ms(ours.p99),
            "ratio_p50": ratio(ms(theirs.p50), ms(ours.p50)),
        }));
    }
    Ok(json!({ "runs": runs, "apps": pairs }))
}

fn print_table(r: &Value) {
    let t = &r["trivial_invocation"];
    let s = &r["scan"];
    let i = &r["import"];
    let e = &r["epoch_interruption"];
    println!("| measurement | domicile | baseline | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| empty invocation (new Store, instantiate, call) | p50 {} us, p99 {} us, {}/s | raw wasmtime: p50 {} us, p99 {} us, {}/s | {}x |",
        t["domicile_p50_us"], t["domicile_p99_us"], t["domicile_per_s"], t["raw_wasmtime_p50_us"], t["raw_wasmtime_p99_us"], t["raw_wasmtime_per_s"], t["ratio_p50"]
    );
    println!(
        "| the same, raw wasmtime on domicile's engine settings (pooling allocator, PAGEMAP_SCAN {}) | | p50 {} us, p99 {} us | {}x |",
        if t["pagemap_scan"] == true { "on" } else { "not available" },
        t["raw_wasmtime_pooled_p50_us"], t["raw_wasmtime_pooled_p99_us"], t["ratio_p50_vs_pooled"]
    );
    println!(
        "| guest scan of {} trips through the cursor | {} ms | native Rust over the same store: {} ms | {}x |",
        s["documents"], s["guest_ms"], s["native_ms"], s["ratio"]
    );
    println!(
        "| Linky importer, {} rows | {} rows/s ({} s) | native parse + insert: {} rows/s ({} s) | {}x the native throughput |",
        i["rows"], i["guest_rows_per_s"], i["guest_s"], i["native_rows_per_s"], i["native_s"], i["throughput_vs_native"]
    );
    println!(
        "| the same import | {} rows/s | raw sled, the same documents, index and change-feed entries, flushed once: {} rows/s ({} s) | {}x the raw sled throughput |",
        i["guest_rows_per_s"], i["raw_sled_rows_per_s"], i["raw_sled_s"], i["throughput_vs_raw_sled"]
    );
    println!(
        "| arithmetic loop, epoch interruption on | {} ms | off: {} ms | +{} % |",
        e["with_ms"], e["without_ms"], e["overhead_pct"]
    );
    for a in r["languages"]["apps"].as_array().into_iter().flatten() {
        println!(
            "| {} app `{}`, a run on the sample data ({} runs) | p50 {} ms, p99 {} ms | Rust app `{}` on the same documents: p50 {} ms, p99 {} ms | {}x |",
            a["language"].as_str().unwrap_or_default(), a["app"].as_str().unwrap_or_default(), r["languages"]["runs"],
            a["p50_ms"], a["p99_ms"], a["rust_app"].as_str().unwrap_or_default(), a["rust_p50_ms"], a["rust_p99_ms"], a["ratio_p50"]
        );
        println!(
            "| the same app, an empty run (instantiate, call, return: an input it refuses at once) | p50 {} ms, p99 {} ms | | |",
            a["empty_run_p50_ms"], a["empty_run_p99_ms"]
        );
        println!(
            "| its install (verify, compile to native code) | {} ms | the Rust app's: {} ms | |",
            a["install_ms"], a["rust_install_ms"]
        );
    }
}

fn write_trips(space: &ResidentSpace, n: usize) -> Result<()> {
    const MODES: [&str; 5] = ["walk", "bike", "car", "bus", "tram"];
    let doctype: domicile_manifest::Doctype = TRIP.parse()?;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let changes: Vec<Change> = chunk
            .iter()
            .map(|&i| {
                let (day, minute) = (1 + i % 28, i % 1440);
                let body = json!({
                    "start": format!("2026-02-{day:02}T{:02}:{:02}:{:02}Z", minute / 60, minute % 60, i % 60),
                    "end": format!("2026-02-{day:02}T23:59:00Z"),
                    "date": format!("2026-02-{day:02}"), "month": "2026-02",
                    "distance_m": (i % 20_000) as f64 + 0.5, "duration_s": 600 + i % 3000, "mode": MODES[i % 5],
                });
                Ok(Change::Put { doctype: doctype.clone(), id: format!("t{i:08}").parse()?, body })
            })
            .collect::<Result<_>>()?;
        space.commit(&changes, &Author::Resident, 0, &[])?;
    }
    Ok(())
}

/// The bench guest's scan, in native Rust over the same store.
fn native_scan(space: &ResidentSpace) -> Result<String> {
    let mut km: BTreeMap<String, f64> = BTreeMap::new();
    let mut cursor =
        space.query(Query { doctype: TRIP.parse()?, selector: Selector::parse("{}")?, sort: None, limit: None })?;
    loop {
        let page = space.next_page(&mut cursor, domicile_host::MAX_BATCH as usize)?;
        if page.is_empty() {
            break;
        }
        for doc in page {
            let mode = doc.body["mode"].as_str().unwrap_or_default().to_owned();
            *km.entry(mode).or_default() += doc.body["distance_m"].as_f64().unwrap_or(0.0) / 1000.0;
        }
    }
    Ok(serde_json::to_string(&km)?)
}

fn same_totals(a: &str, b: &str) -> Result<bool> {
    let (a, b): (BTreeMap<String, f64>, BTreeMap<String, f64>) = (serde_json::from_str(a)?, serde_json::from_str(b)?);
    Ok(a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| (v - w).abs() < 1e-6 * v.abs().max(1.0))))
}

/// An Enedis load-curve export of `rows` half-hours.
fn load_curve(rows: usize) -> Vec<u8> {
    let mut out = String::with_capacity(rows * 32 + 256);
    out.push_str("Identifiant PRM;Type de donnees;Date de debut;Date de fin;Grandeur physique;Grandeur metier;Etape metier;Unite\n");
    out.push_str("25946599093143;Courbe de charge;01/01/1970;01/01/2100;Energie active;Consommation;Comptage Brut;W\n");
    out.push_str("Horodate;Valeur\n");
    let start = time::OffsetDateTime::from_unix_timestamp(1_600_000_000).expect("a valid time");
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    for i in 0..rows {
        let t = start + time::Duration::minutes(30 * i as i64);
        out.push_str(&t.format(&format).expect("formats"));
        out.push_str(&format!(";{}\n", 150 + (i * 7919) % 2500));
    }
    out.into_bytes()
}

/// What a native importer would do: parse, build the same documents, and
/// write them through the same all-or-nothing import (validated, staged,
/// committed).
fn native_import(space: &ResidentSpace, csv: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(csv)?;
    let doctype: domicile_manifest::Doctype = READING.parse()?;
    let mut import = space.begin_import()?;
    for line in text.lines().skip(3) {
        let (at, value) = line.split_once(';').context("a row without `;`")?;
        let body = json!({
            "meter": "25946599093143", "at": at, "date": &at[..10], "kind": "load-curve",
            "value": value.parse::<f64>()?, "unit": "W",
        });
        let id = space.id_for(&doctype, &body)?;
        import.stage(&Change::Put { doctype: doctype.clone(), id, body })?;
    }
    import.commit(&Author::Resident, 0, &[])?;
    Ok(())
}

/// The floor under any import of the load curve: raw sled 0.34 (as the
/// store opens it, no periodic flush) storing each row's document, its two
/// index entries (`at` and `date`, the doctype's indexes) and a change-feed
/// entry, in one batch per tree, flushed once. No schema check, staging,
/// provenance or audit: what those cost is the gap to domicile.
fn raw_sled_import(dir: &std::path::Path, csv: &[u8]) -> Result<Duration> {
    let db = domicile_store::space_config(dir).flush_every_ms(None).open()?;
    let (docs, index, changes) = (db.open_tree("docs")?, db.open_tree("index")?, db.open_tree("changes")?);
    let started = Instant::now();
    let text = std::str::from_utf8(csv)?;
    let (mut doc_batch, mut index_batch, mut change_batch) =
        (sled::Batch::default(), sled::Batch::default(), sled::Batch::default());
    for (seq, line) in text.lines().skip(3).enumerate() {
        let (at, value) = line.split_once(';').context("a row without `;`")?;
        let id = format!("25946599093143/load-curve/{at}");
        let body = json!({
            "meter": "25946599093143", "at": at, "date": &at[..10], "kind": "load-curve",
            "value": value.parse::<f64>()?, "unit": "W",
        });
        doc_batch.insert(format!("{READING}\0{id}").as_bytes(), serde_json::to_vec(&body)?);
        index_batch.insert(format!("{READING}\0at\0{at}\0{id}").as_bytes(), &[][..]);
        index_batch.insert(format!("{READING}\0date\0{}\0{id}", &at[..10]).as_bytes(), &[][..]);
        let change = serde_json::to_vec(&json!({ "doctype": READING, "id": id, "op": "put" }))?;
        change_batch.insert(&(seq as u64).to_be_bytes(), change);
    }
    docs.apply_batch(doc_batch)?;
    index.apply_batch(index_batch)?;
    changes.apply_batch(change_batch)?;
    db.flush()?;
    Ok(started.elapsed())
}

/// Raw wasmtime on the same component: the baselines.
mod raw {
    use std::time::{Duration, Instant};

    use wasmtime::component::{Component, Linker};
    use wasmtime::Result;
    use wasmtime::{Config, Engine, Store};

    use super::median;

    type Run = wasmtime::component::TypedFunc<(String,), (Result<String, String>,)>;

    /// The bench component on an engine of its own, with a bare linker
    /// (imports the call never reaches are traps).
    pub struct Runner {
        engine: Engine,
        pre: wasmtime::component::InstancePre<()>,
    }

    impl Runner {
        pub fn new(config: &Config, bytes: &[u8]) -> Result<Runner> {
            let engine = Engine::new(config)?;
            let component = Component::new(&engine, bytes)?;
            let mut linker = Linker::<()>::new(&engine);
            linker.define_unknown_imports_as_traps(&component)?;
            let pre = linker.instantiate_pre(&component)?;
            Ok(Runner { engine, pre })
        }

        /// New `Store`, instantiate, call `run("{}")`: what the runtime does.
        pub async fn once(&self) -> Result<()> {
            let mut store = Store::new(&self.engine, ());
            let instance = self.pre.instantiate_async(&mut store).await?;
            let run: Run = instance.get_typed_func(&mut store, "run")?;
            let (out,) = run.call_async(&mut store, ("{}".to_owned(),)).await?;
            out.map_err(wasmtime::Error::msg)?;
            Ok(())
        }
    }

    /// The same loop of arithmetic on an engine with and one without epoch
    /// interruption (its deadline never reached); medians of 5 runs.
    pub async fn epoch_cost(bytes: &[u8], rounds: u64) -> Result<(Duration, Duration)> {
        let mut results = Vec::new();
        for epochs in [true, false] {
            let mut config = Config::new();
            config.epoch_interruption(epochs);
            let engine = Engine::new(&config)?;
            let component = Component::new(&engine, bytes)?;
            let mut linker = Linker::<()>::new(&engine);
            linker.define_unknown_imports_as_traps(&component)?;
            let pre = linker.instantiate_pre(&component)?;
            let mut samples = Vec::new();
            for _ in 0..5 {
                let mut store = Store::new(&engine, ());
                store.set_epoch_deadline(u64::MAX / 2);
                let instance = pre.instantiate_async(&mut store).await?;
                let run: Run = instance.get_typed_func(&mut store, "run")?;
                let t = Instant::now();
                run.call_async(&mut store, (format!(r#"{{"spin": {rounds}}}"#),))
                    .await?
                    .0
                    .map_err(wasmtime::Error::msg)?;
                samples.push(t.elapsed());
            }
            results.push(median(samples));
        }
        Ok((results[0], results[1]))
    }
}
