//! `domicile bench-residents`: what one more resident costs on this node,
//! measured on a scratch home grown to `--residents` residents (10,000 by
//! default), each figure next to its baseline or its value at a small
//! number of residents, in the same run:
//!
//! - disk of an empty resident, and residents created per second (store
//!   side, no password hashing) in each stretch of the growth;
//! - one CLI command (a separate `domicile` process: open the home and
//!   answer) at 10 residents and at the full count;
//! - a run's latency for one resident at 10 residents and at the full
//!   count with 200 other residents active;
//! - a durable document write against a raw sled insert + flush;
//! - a real `domicile serve` started on the whole home: the time until it
//!   answers, its first look at the residents' triggers (how long, how
//!   much of a core), its RSS while 200 residents sign in and run an app
//!   over HTTP, and its CPU once left alone (the trigger scheduler's
//!   ticks); then the disk of an empty resident after that restart;
//! - the disk of a demo-sized space, and how it grows with documents.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use domicile_home::Home;
use domicile_host::Clock;
use domicile_manifest::AppId;
use domicile_package::Role;
use domicile_store::{Author, Change, ResidentName, ResidentSpace};
use serde_json::{json, Value};

use crate::bench::{median, ms};
use crate::server::Session;

const IMPORTER: &str = "io.domicile.sample.gpx-importer";
const FOOTPRINT: &str = "io.domicile.sample.mobility-footprint";
const GPX: &[u8] = include_bytes!("../../../sample-apps/data/week-around-nantes.gpx");
const TRIP: &str = "io.domicile.mobility.trip";

pub struct Options {
    pub residents: usize,
    pub active: usize,
    pub json: bool,
}

fn name(i: usize) -> ResidentName {
    format!("r{i:06}").parse().expect("a valid resident name")
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Bytes of disk (allocated blocks) under `path`.
fn disk(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.blocks() * 512;
    }
    std::fs::read_dir(path).map_or(0, |entries| entries.flatten().map(|e| disk(&e.path())).sum())
}

/// The same `domicile` binary, on `dir`, as a separate process.
fn domicile(dir: &Path, args: &[&str]) -> Command {
    let exe = std::env::current_exe().expect("the running binary's path");
    let mut command = Command::new(exe);
    command.arg("--home").arg(dir).args(args).env_remove("DOMICILE_RESIDENT").stdin(Stdio::null());
    command
}

/// Median wall time of a CLI command run as its own process (open the
/// home, answer, exit), 7 times.
fn cli_command(dir: &Path, resident: &ResidentName) -> Result<Duration> {
    let mut samples = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let out = domicile(dir, &["--json", "--resident", resident.as_str(), "quota"]).output()?;
        samples.push(started.elapsed());
        if !out.status.success() {
            bail!("domicile quota failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(median(samples))
}

async fn install_mobility(home: &Home, space: &ResidentSpace) -> Result<()> {
    let runtime = home.runtime()?;
    for app in ["gpx-importer", "mobility-footprint"] {
        domicile_samples::install_granting_all(home, space, domicile_samples::sample_package(app)?)?;
    }
    runtime.run_importer(space, &IMPORTER.parse()?, "week.gpx", GPX).await?;
    Ok(())
}

async fn run_latency(home: &Home, space: &ResidentSpace, runs: usize) -> Result<Duration> {
    let footprint: AppId = FOOTPRINT.parse()?;
    let runtime = home.runtime()?;
    runtime.run_service(space, &footprint, "{}").await?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        runtime.run_service(space, &footprint, "{}").await?;
        samples.push(started.elapsed());
    }
    Ok(median(samples))
}

fn trip(i: usize) -> Value {
    let (day, mode) = (1 + i % 28, ["walk", "bike", "bus", "car"][i % 4]);
    json!({
        "start": format!("2026-03-{day:02}T08:00:00Z"), "end": format!("2026-03-{day:02}T08:30:00Z"),
        "date": format!("2026-03-{day:02}"), "month": "2026-03",
        "distance_m": 1000 + i % 9000, "duration_s": 1800, "mode": mode,
    })
}

/// A durable write through the store (schema check, indexes, feed,
/// counters, one transaction, flush) against a raw sled insert + flush of
/// the same bytes, interleaved so both see the same disk.
fn durable_writes(space: &ResidentSpace, scratch: &Path, n: usize) -> Result<(Duration, Duration)> {
    let raw = domicile_store::space_config(&scratch.join("raw-sled")).flush_every_ms(None).open()?;
    let doctype: domicile_manifest::Doctype = TRIP.parse()?;
    let (mut ours, mut baseline) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let body = trip(i);
        let bytes = serde_json::to_vec(&body)?;
        let change = Change::Put { doctype: doctype.clone(), id: format!("w{i:06}").parse()?, body };
        let started = Instant::now();
        space.commit(&[change], &Author::Resident, 1, &[])?;
        ours.push(started.elapsed());
        let started = Instant::now();
        raw.insert(format!("w{i:06}"), bytes)?;
        raw.flush()?;
        baseline.push(started.elapsed());
    }
    Ok((median(ours), median(baseline)))
}

/// Starts `domicile serve` on the home, signs `active` residents in and
/// has each run the footprint once over HTTP; returns the server's RSS and
/// peak RSS (kB) and the HTTP run latency.
fn serve_and_measure(dir: &Path, active: usize, password: &str) -> Result<Value> {
    let started = Instant::now();
    let mut server = domicile(dir, &["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start domicile serve")?;
    let mut lines = std::io::BufReader::new(server.stdout.take().context("no stdout")?).lines();
    let base = loop {
        let line = lines.next().context("serve stopped before listening")??;
        if let Some(url) = line.strip_prefix("domicile: serving ") {
            break url.trim_end_matches('/').to_owned();
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let get = |path: &str| -> Option<String> {
        let mut answer = agent.get(format!("{base}{path}")).call().ok()?;
        (answer.status() == 200).then(|| answer.body_mut().read_to_string().ok()).flatten()
    };
    while get("/healthz").is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            bail!("serve did not answer /healthz within 120 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let ready = started.elapsed();
    let idle_kb = rss_kb(server.id())?.0;
    let first_look = (|| -> Result<Value> {
        // The scheduler's first look: the residents written since their
        // last look, a few a tick, until none waits (two ticks at least,
        // the first to read them).
        let (cpu_before, look_started) = (cpu_ticks(server.id())?, Instant::now());
        std::thread::sleep(Duration::from_secs(3));
        let waiting = |metrics: &str| {
            metrics.lines().find_map(|l| l.strip_prefix("domicile_trigger_looks_due ")).map(|n| n.trim() != "0")
        };
        while get("/metrics").is_none_or(|m| waiting(&m) != Some(false)) {
            if look_started.elapsed() > Duration::from_secs(3600) {
                bail!("the first look at the residents' triggers took over an hour");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let took = look_started.elapsed();
        let cpu = (cpu_ticks(server.id())? - cpu_before) as f64 / clock_ticks_per_second() / took.as_secs_f64() * 100.0;
        Ok(json!({ "s": round2(took.as_secs_f64()), "cpu_pct": round2(cpu) }))
    })();
    let measured = (|| -> Result<Value> {
        let threads = 4;
        let mut workers = Vec::new();
        for t in 0..threads {
            let (base, password) = (base.clone(), password.to_owned());
            workers.push(std::thread::spawn(move || -> Result<Vec<Duration>> {
                let mut samples = Vec::new();
                for i in (t..active).step_by(threads) {
                    let session = Session::sign_in(&base, name(i).as_str(), &password)?;
                    samples.push(session.run(FOOTPRINT)?);
                }
                Ok(samples)
            }));
        }
        let mut samples = Vec::new();
        for worker in workers {
            samples.extend(worker.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??);
        }
        let (rss, peak) = rss_kb(server.id())?;
        // The server left alone: what its background work (the trigger
        // scheduler's ticks over every resident) costs, its first look done
        // and the residents who just ran settled.
        std::thread::sleep(Duration::from_secs(3));
        let before = cpu_ticks(server.id())?;
        let window = Duration::from_secs(5);
        std::thread::sleep(window);
        let idle_cpu_pct =
            (cpu_ticks(server.id())? - before) as f64 / clock_ticks_per_second() / window.as_secs_f64() * 100.0;
        Ok(json!({
            "ready_ms": ms(ready),
            "first_look": first_look?,
            "idle_cpu_pct": round2(idle_cpu_pct),
            "idle_rss_mib": round2(idle_kb as f64 / 1024.0),
            "rss_mib": round2(rss as f64 / 1024.0),
            "peak_rss_mib": round2(peak as f64 / 1024.0),
            "http_run_p50_ms": ms(median(samples)),
        }))
    })();
    // SIGTERM: the server drains and flushes.
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
    measured
}

/// CPU time a process used (user + system), in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces), from the third.
    let fields: Vec<&str> = stat.rsplit_once(')').context("malformed /proc stat")?.1.split_whitespace().collect();
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// The kernel's clock ticks per second (USER_HZ), 100 on Linux.
fn clock_ticks_per_second() -> f64 {
    100.0
}

/// VmRSS and VmHWM of a process, kB.
fn rss_kb(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

pub async fn run(options: Options) -> Result<()> {
    if options.residents < 100 || options.active == 0 || options.active > options.residents {
        bail!("--residents must be at least 100, and --active between 1 and --residents");
    }
    let scratch = tempfile::tempdir().context("cannot create a scratch directory for the benchmark")?;
    let dir = scratch.path().join("home");
    let mut home = Home::create(&dir, &name(0), Clock::System)?;
    std::fs::write(dir.join("config.toml"), "[server]\nsign-ins-per-client-per-minute = 0\n")?;
    home.trust_key(domicile_samples::sample_key()?, "domicile samples", &[Role::Publisher])?;
    let mut report = serde_json::Map::new();

    // At 10 residents: a run's latency, and one CLI command.
    for i in 1..10 {
        home.store().create_resident(&name(i))?;
    }
    let first = home.store().resident(&name(0))?;
    install_mobility(&home, &first).await?;
    let runs = 50;
    let run_at_10 = run_latency(&home, &first, runs).await?;
    drop(first);
    drop(home);
    let cli_at_10 = cli_command(&dir, &name(9))?;
    home = Home::open(&dir, Clock::System, &mut |_| {})?;

    // Growing to the full count: creation rate per stretch.
    eprintln!("bench-residents: creating {} residents", options.residents);
    let mut stretches = Vec::new();
    let mut stretch_start = (10, Instant::now());
    let marks: Vec<usize> = [100, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000]
        .into_iter()
        .filter(|&m| m < options.residents)
        .chain([options.residents])
        .collect();
    let mut created_at = Vec::with_capacity(options.residents);
    for i in 10..options.residents {
        let started = Instant::now();
        drop(home.store().create_resident(&name(i))?);
        created_at.push(started.elapsed());
        if marks.contains(&(i + 1)) {
            let (from, at) = stretch_start;
            let per_s = (i + 1 - from) as f64 / at.elapsed().as_secs_f64();
            let window = &created_at[from - 10..];
            stretches.push(json!({
                "from": from, "to": i + 1,
                "per_s": per_s.round(),
                "p50_ms": ms(median(window.to_vec())),
                "p99_ms": ms(crate::bench::quantile(&{ let mut w = window.to_vec(); w.sort(); w }, 0.99)),
            }));
            eprintln!("bench-residents: {} residents, {:.0}/s in the last stretch", i + 1, per_s);
            stretch_start = (i + 1, Instant::now());
        }
    }
    // Empty residents only: the first one has apps and trips.
    let empty: Vec<u64> = (1..options.residents).map(|i| disk(&home.store().space_dir(&name(i)))).collect();
    let empty_kb = empty.iter().sum::<u64>() as f64 / empty.len() as f64 / 1024.0;
    report.insert("residents".into(), json!(options.residents));
    report.insert("empty_resident_disk_kb".into(), json!(round2(empty_kb)));
    report.insert("home_disk_mib".into(), json!(round2(disk(&dir.join("spaces")) as f64 / (1024.0 * 1024.0))));
    report.insert("creation".into(), Value::Array(stretches));

    // `active` residents with apps and trips, each run once; then resident
    // 0's runs again.
    eprintln!("bench-residents: {} active residents", options.active);
    let password = domicile_home::new_password();
    for i in 0..options.active {
        let space = home.store().resident(&name(i))?;
        if i > 0 {
            install_mobility(&home, &space).await?;
        }
        home.accounts().set_password(&name(i), &password)?;
        home.runtime()?.run_service(&space, &FOOTPRINT.parse()?, "{}").await?;
    }
    let first = home.store().resident(&name(0))?;
    let run_at_full = run_latency(&home, &first, runs).await?;
    let (write, raw_write) = durable_writes(&first, scratch.path(), 1000)?;
    report.insert(
        "run".into(),
        json!({
            "p50_ms_at_10": ms(run_at_10),
            "p50_ms_at_full": ms(run_at_full),
            "ratio": round2(run_at_full.as_secs_f64() / run_at_10.as_secs_f64()),
            "active_residents": options.active,
        }),
    );
    report.insert(
        "durable_write".into(),
        json!({
            "p50_us": (write.as_secs_f64() * 1e6).round(),
            "raw_sled_insert_flush_p50_us": (raw_write.as_secs_f64() * 1e6).round(),
            "ratio": round2(write.as_secs_f64() / raw_write.as_secs_f64()),
        }),
    );
    // How a space grows with documents: resident 0 now holds the week's
    // trips and 1,000 written ones; 9,000 more.
    let before = disk(&home.store().space_dir(&name(0)));
    let trips_before = first.doctype_counts()?.iter().map(|(_, n)| n).sum::<u64>();
    let doctype: domicile_manifest::Doctype = TRIP.parse()?;
    for chunk in (1_000..10_000).collect::<Vec<usize>>().chunks(500) {
        let changes: Vec<Change> = chunk
            .iter()
            .map(|&i| Ok(Change::Put { doctype: doctype.clone(), id: format!("w{i:06}").parse()?, body: trip(i) }))
            .collect::<Result<_>>()?;
        first.commit(&changes, &Author::Resident, 1, &[])?;
    }
    first.flush()?;
    let after = disk(&home.store().space_dir(&name(0)));
    let trips_after = first.doctype_counts()?.iter().map(|(_, n)| n).sum::<u64>();
    report.insert(
        "space_growth".into(),
        json!({
            "documents_before": trips_before, "disk_mib_before": round2(before as f64 / 1048576.0),
            "documents_after": trips_after, "disk_mib_after": round2(after as f64 / 1048576.0),
            "bytes_per_document": ((after.saturating_sub(before)) as f64 / (trips_after - trips_before) as f64).round(),
        }),
    );
    drop(first);
    drop(home);

    let cli_at_full = cli_command(&dir, &name(options.residents - 1))?;
    report.insert(
        "cli_command".into(),
        json!({ "ms_at_10": ms(cli_at_10), "ms_at_full": ms(cli_at_full), "command": "domicile --json --resident NAME quota" }),
    );
    eprintln!(
        "bench-residents: serve with {} residents, {} of them signing in and running",
        options.residents, options.active
    );
    report.insert("serve".into(), serve_and_measure(&dir, options.active, &password)?);
    // The empty residents again, now that a server started on the home
    // and looked at whoever needed it.
    let empty: Vec<u64> = (options.active..options.residents)
        .map(|i| disk(&dir.join("spaces/residents").join(name(i).as_str())))
        .collect();
    report.insert(
        "empty_resident_disk_kb_after_restart".into(),
        json!(round2(empty.iter().sum::<u64>() as f64 / empty.len().max(1) as f64 / 1024.0)),
    );
    report.insert("demo_space".into(), demo_space(scratch.path()).await?);

    crate::emit(&Value::Object(report), options.json, print_table);
    Ok(())
}

/// The demo's resident (every sample app, every sample file imported).
async fn demo_space(scratch: &Path) -> Result<Value> {
    let dir = scratch.join("demo");
    let out =
        domicile(&dir, &["demo", "--dir", dir.to_str().context("a UTF-8 path")?]).stdout(Stdio::null()).output()?;
    if !out.status.success() {
        bail!("domicile demo failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let home = Home::open(&dir, Clock::System, &mut |_| {})?;
    let space = home.resident(None)?;
    let documents: u64 = space.doctype_counts()?.iter().map(|(_, n)| n).sum();
    let packages: u64 = space.apps()?.len() as u64;
    Ok(json!({
        "documents": documents,
        "apps": packages,
        "disk_mib": round2(disk(&home.store().space_dir(space.resident())) as f64 / 1048576.0),
    }))
}

fn print_table(r: &Value) {
    let v = |path: &[&str]| {
        let mut at = r;
        for key in path {
            at = &at[*key];
        }
        match at {
            Value::Number(n) => n.to_string(),
            other => other.to_string(),
        }
    };
    println!("domicile bench-residents: one home grown to {} residents on this machine\n", v(&["residents"]));
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!(
        "| disk of an empty resident, created / after a server's restart and first look | {} KB / {} KB | ≤ 100 KB |",
        v(&["empty_resident_disk_kb"]),
        v(&["empty_resident_disk_kb_after_restart"])
    );
    if let Some(stretches) = r["creation"].as_array() {
        for s in stretches {
            println!(
                "| residents created per second, {} to {} | {}/s (p50 {} ms, p99 {} ms) | ≥ 200/s, flat |",
                s["from"], s["to"], s["per_s"], s["p50_ms"], s["p99_ms"]
            );
        }
    }
    println!(
        "| one CLI command, cold process (`{}`) | {} ms at 10, {} ms at {} | ≤ 100 ms |",
        r["cli_command"]["command"].as_str().unwrap_or_default(),
        v(&["cli_command", "ms_at_10"]),
        v(&["cli_command", "ms_at_full"]),
        v(&["residents"])
    );
    println!(
        "| `serve` RSS, {} residents, {} signed in and running | {} MiB (peak {}, idle {}) | ≤ 1 GB |",
        v(&["residents"]),
        v(&["run", "active_residents"]),
        v(&["serve", "rss_mib"]),
        v(&["serve", "peak_rss_mib"]),
        v(&["serve", "idle_rss_mib"])
    );
    println!(
        "| `serve` from start to answering, {} residents | {} ms | ≤ 2 s |",
        v(&["residents"]),
        v(&["serve", "ready_ms"])
    );
    println!(
        "| `serve`'s first look at the residents' triggers (those written since their last look) | {} s, {} % of a core | ≤ 5 % |",
        v(&["serve", "first_look", "s"]),
        v(&["serve", "first_look", "cpu_pct"])
    );
    println!(
        "| `serve` CPU left alone (trigger ticks over {} residents) | {} % of a core | ≤ 1 % |",
        v(&["residents"]),
        v(&["serve", "idle_cpu_pct"])
    );
    println!(
        "| run latency of one resident, at {} / at 10 | {} ms / {} ms = {}x | ≤ 1.2x |",
        v(&["residents"]),
        v(&["run", "p50_ms_at_full"]),
        v(&["run", "p50_ms_at_10"]),
        v(&["run", "ratio"])
    );
    println!(
        "| durable write / raw sled insert+flush | {} µs / {} µs = {}x | ≤ 1.5x |",
        v(&["durable_write", "p50_us"]),
        v(&["durable_write", "raw_sled_insert_flush_p50_us"]),
        v(&["durable_write", "ratio"])
    );
    println!(
        "\nwhole home: {} MiB on disk; demo space: {} documents and {} apps in {} MiB; a space grows by {} bytes per trip ({} MiB at {} documents, {} MiB at {})",
        v(&["home_disk_mib"]),
        v(&["demo_space", "documents"]),
        v(&["demo_space", "apps"]),
        v(&["demo_space", "disk_mib"]),
        v(&["space_growth", "bytes_per_document"]),
        v(&["space_growth", "disk_mib_before"]),
        v(&["space_growth", "documents_before"]),
        v(&["space_growth", "disk_mib_after"]),
        v(&["space_growth", "documents_after"])
    );
}
