//! `domicile bench-server`: many residents running apps at once through
//! `domicile serve` over loopback, against the same runs made in-process
//! (no HTTP) in the same run, while a probe checks the server still
//! answers `/healthz` quickly. On a scratch home deleted afterwards.
//!
//! The HTTP clients run in this process, on the same cores as the server:
//! the CPU time of each phase is measured (the process's, and the clients'
//! own threads'), so that the report says how much of the gap between the
//! two phases is the server's handling of HTTP and how much is the clients'
//! share of the machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use domicile_home::Home;
use domicile_host::Clock;
use domicile_manifest::AppId;
use domicile_package::Role;
use domicile_server::ServerConfig;
use domicile_store::ResidentSpace;
use serde_json::{json, Value};

use crate::bench::{ms, quantile};

const IMPORTER: &str = "io.domicile.sample.gpx-importer";
const FOOTPRINT: &str = "io.domicile.sample.mobility-footprint";
const GPX: &[u8] = include_bytes!("../../../sample-apps/data/week-around-nantes.gpx");

pub struct LoadOptions {
    pub residents: usize,
    pub runs: usize,
    pub json: bool,
}

/// p50, p99 and max of samples, in ms.
pub(crate) fn percentiles(mut samples: Vec<Duration>) -> Value {
    if samples.is_empty() {
        return json!(null);
    }
    samples.sort();
    let at = |q| quantile(&samples, q);
    json!({ "p50_ms": ms(at(0.50)), "p99_ms": ms(at(0.99)), "max_ms": ms(at(1.0)), "samples": samples.len() })
}

/// A signed-in resident of the server under test.
pub(crate) struct Session {
    agent: ureq::Agent,
    base: String,
    cookie: String,
    csrf: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(120))).build().into()
}

impl Session {
    pub(crate) fn sign_in(base: &str, name: &str, password: &str) -> Result<Session> {
        let agent = agent();
        let mut reply = agent
            .post(format!("{base}/api/v1/session"))
            .header("content-type", "application/json")
            .send(json!({ "name": name, "password": password }).to_string())
            .context("signing in")?;
        let cookie = reply
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split(';').next())
            .context("no session cookie")?
            .to_owned();
        let body: Value = serde_json::from_str(&reply.body_mut().read_to_string()?)?;
        let csrf = body["csrf"].as_str().context("no CSRF token")?.to_owned();
        Ok(Session { agent, base: base.to_owned(), cookie, csrf })
    }

    pub(crate) fn run(&self, app: &str) -> Result<Duration> {
        let started = Instant::now();
        self.post(&format!("/api/v1/apps/{app}/run"), "application/json", b"{}")?;
        Ok(started.elapsed())
    }

    /// POSTs `body` to `path` (under /api/v1/...) as the signed-in
    /// resident; the answer's JSON.
    pub(crate) fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Value> {
        let mut reply = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .header("content-type", content_type)
            .send(body)
            .with_context(|| format!("POST {path}"))?;
        Ok(serde_json::from_str(&reply.body_mut().read_to_string()?)?)
    }

    /// GETs `path` as the signed-in resident; the answer's JSON.
    pub(crate) fn get(&self, path: &str) -> Result<Value> {
        let mut reply = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .call()
            .with_context(|| format!("GET {path}"))?;
        Ok(serde_json::from_str(&reply.body_mut().read_to_string()?)?)
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The same session through another node of a cluster.
    pub(crate) fn through(&self, base: &str) -> Session {
        Session {
            agent: self.agent.clone(),
            base: base.to_owned(),
            cookie: self.cookie.clone(),
            csrf: self.csrf.clone(),
        }
    }
}

pub async fn run(options: LoadOptions) -> Result<()> {
    if options.residents == 0 || options.runs == 0 {
        bail!("--residents and --runs must be at least 1");
    }
    let scratch = tempfile::tempdir().context("cannot create a scratch directory for the load test")?;
    let home = Arc::new(Home::create(scratch.path(), &"r0".parse()?, Clock::System)?);
    home.trust_key(domicile_samples::sample_key()?, "domicile samples", &[Role::Publisher])?;
    let runtime = home.runtime()?.clone();
    let password = domicile_home::new_password();

    // Residents, each with the mobility apps and a week of trips.
    let mut spaces = Vec::new();
    for i in 0..options.residents {
        let name = format!("r{i}").parse()?;
        let space = if i == 0 { home.store().resident(&name)? } else { home.store().create_resident(&name)? };
        home.accounts().set_password(&name, &password)?;
        for app in ["gpx-importer", "mobility-footprint"] {
            domicile_samples::install_granting_all(&home, &space, domicile_samples::sample_package(app)?)?;
        }
        runtime.run_importer(&space, &IMPORTER.parse()?, "week.gpx", GPX).await?;
        spaces.push(space);
    }
    let footprint: AppId = FOOTPRINT.parse()?;

    // Baseline: the same runs, as many at once, straight on the runtime.
    let cpu_before = process_cpu();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for space in spaces.clone() {
        let (runtime, app, runs) = (runtime.clone(), footprint.clone(), options.runs);
        tasks.push(tokio::spawn(async move { in_process(&runtime, &space, &app, runs).await }));
    }
    let mut direct = Vec::new();
    for task in tasks {
        direct.extend(task.await??);
    }
    let direct_elapsed = started.elapsed();
    let direct_cpu = process_cpu().saturating_sub(cpu_before);

    // The server, in this process, on a free port of 127.0.0.1.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut config = ServerConfig::from_settings(&home.config()?.server);
    config.runs_per_resident = 2;
    // Every simulated resident signs in from this one address.
    config.sign_ins_per_client_per_minute = 0;
    let served = home.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(domicile_server::serve(served, config, listener, None, async move {
        let _ = stopped.await;
    }));

    let idle = {
        let base = base.clone();
        tokio::task::spawn_blocking(move || probe(&base, Duration::from_millis(600), None)).await??.0
    };
    let load_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let (base, done) = (base.clone(), load_done.clone());
        tokio::task::spawn_blocking(move || probe(&base, Duration::from_secs(3600), Some(done)))
    };
    // Everyone signs in first (argon2 is slow on purpose), then all run at once.
    let ready = Arc::new(std::sync::Barrier::new(options.residents));
    let mut clients = Vec::new();
    for i in 0..options.residents {
        let (base, password, runs, ready) = (base.clone(), password.clone(), options.runs, ready.clone());
        clients.push(tokio::task::spawn_blocking(move || -> Result<Client> {
            let session = Session::sign_in(&base, &format!("r{i}"), &password);
            ready.wait();
            let (started, process_started, own_started) = (Instant::now(), process_cpu(), thread_cpu());
            let samples = (0..runs).map(|_| session.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?.run(FOOTPRINT));
            let samples = samples.collect::<Result<Vec<_>>>()?;
            let own_cpu = thread_cpu().saturating_sub(own_started);
            Ok(Client {
                started,
                ended: Instant::now(),
                process_started,
                process_ended: process_cpu(),
                own_cpu,
                samples,
            })
        }));
    }
    let mut over_http = Vec::new();
    let mut errors = Vec::new();
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    let (mut cpu_first, mut cpu_last, mut clients_cpu) = (None::<Duration>, None::<Duration>, Duration::ZERO);
    for client in clients {
        match client.await? {
            Ok(client) => {
                first = Some(first.map_or(client.started, |f| f.min(client.started)));
                last = Some(last.map_or(client.ended, |l| l.max(client.ended)));
                cpu_first = Some(cpu_first.map_or(client.process_started, |f| f.min(client.process_started)));
                cpu_last = Some(cpu_last.map_or(client.process_ended, |l| l.max(client.process_ended)));
                clients_cpu += client.own_cpu;
                over_http.extend(client.samples);
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let http_cpu = cpu_last.unwrap_or_default().saturating_sub(cpu_first.unwrap_or_default());
    let http_elapsed = match (first, last) {
        (Some(first), Some(last)) => last - first,
        _ => Duration::from_secs(1),
    };
    load_done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (under_load, probe_cpu) = prober.await??;
    let _ = stop.send(());
    server.await??;

    let total = (options.residents * options.runs) as f64;
    let direct_rate = total / direct_elapsed.as_secs_f64();
    let http_rate = over_http.len() as f64 / http_elapsed.as_secs_f64();
    let per_run =
        |cpu: Duration, runs: usize| (cpu.as_secs_f64() * 1000.0 / runs.max(1) as f64 * 100.0).round() / 100.0;
    let http_runs = over_http.len();
    let load_generator = clients_cpu + probe_cpu;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = json!({
        "cores": cores,
        "in_process_ms_per_run": per_run(direct_cpu, total as usize),
        "over_http_ms_per_run": per_run(http_cpu, http_runs),
        "over_http_clients_ms_per_run": per_run(load_generator, http_runs),
        "over_http_server_ms_per_run": per_run(http_cpu.saturating_sub(load_generator), http_runs),
        "clients_share_of_the_machine":
            (load_generator.as_secs_f64() / (http_elapsed.as_secs_f64() * cores as f64) * 100.0).round() / 100.0,
        // What the ratio would be if both phases were bound by the CPU alone.
        "cpu_bound_ratio": (direct_cpu.as_secs_f64() / total / (http_cpu.as_secs_f64() / http_runs.max(1) as f64) * 100.0).round() / 100.0,
    });
    let report = json!({
        "residents": options.residents,
        "runs_per_resident": options.runs,
        "in_process": { "runs_per_s": (direct_rate * 10.0).round() / 10.0, "latency": percentiles(direct) },
        "over_http": { "runs_per_s": (http_rate * 10.0).round() / 10.0, "latency": percentiles(over_http) },
        "http_throughput_ratio": (http_rate / direct_rate * 100.0).round() / 100.0,
        "cpu": cpu,
        "healthz_idle": percentiles(idle),
        "healthz_under_load": percentiles(under_load),
        "errors": errors,
    });
    if options.json {
        println!("{report}");
    } else {
        print_report(&report);
    }
    if !report["errors"].as_array().is_some_and(Vec::is_empty) {
        bail!("{} resident(s) could not complete their runs", report["errors"].as_array().map_or(0, Vec::len));
    }
    Ok(())
}

async fn in_process(
    runtime: &domicile_host::Runtime,
    space: &ResidentSpace,
    app: &AppId,
    runs: usize,
) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        runtime.run_service(space, app, "{}").await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

/// One HTTP client's runs: when, how long each, and the CPU it took (the
/// process's from its start to its end, its own thread's).
struct Client {
    started: Instant,
    ended: Instant,
    process_started: Duration,
    process_ended: Duration,
    own_cpu: Duration,
    samples: Vec<Duration>,
}

/// The CPU time this process has used so far, all threads. Read from the
/// same clocks as [`thread_cpu`] (getrusage's figures are adjusted from
/// scheduler ticks, and could come out below the sum of its threads').
fn process_cpu() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// The CPU time the calling thread has used so far.
fn thread_cpu() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

#[allow(unsafe_code)]
fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through the pointer, which
    // points to one.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(now.tv_sec as u64) + Duration::from_nanos(now.tv_nsec as u64)
}

/// `/healthz` every 20 ms until `until` is set (or `window` passed); the
/// samples, and the CPU time the probing took.
fn probe(
    base: &str,
    window: Duration,
    until: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> Result<(Vec<Duration>, Duration)> {
    let cpu_started = thread_cpu();
    let agent = agent();
    // A first request opens the connection: not a sample.
    agent.get(format!("{base}/healthz")).call()?.body_mut().read_to_string()?;
    let started = Instant::now();
    let mut samples = Vec::new();
    // At least one sample, however short the load.
    loop {
        let t = Instant::now();
        agent.get(format!("{base}/healthz")).call()?.body_mut().read_to_string()?;
        samples.push(t.elapsed());
        if started.elapsed() >= window || until.as_ref().is_some_and(|d| d.load(std::sync::atomic::Ordering::Relaxed)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((samples, thread_cpu().saturating_sub(cpu_started)))
}

fn print_report(r: &Value) {
    let num = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x}"));
    let row = |rate: &str, label: &str, v: &Value| {
        println!(
            "{rate:>10} {:>10} {:>10} {:>10}   {label}",
            num(&v["p50_ms"]) + " ms",
            num(&v["p99_ms"]) + " ms",
            num(&v["max_ms"]) + " ms"
        )
    };
    println!(
        "domicile bench-server: {} residents x {} runs of the mobility footprint each, all residents at once\n",
        r["residents"], r["runs_per_resident"]
    );
    println!("{:>10} {:>10} {:>10} {:>10}", "runs/s", "p50", "p99", "max");
    for (label, key) in
        [("in-process (no HTTP), same concurrency", "in_process"), ("over HTTP on 127.0.0.1", "over_http")]
    {
        row(&num(&r[key]["runs_per_s"]), label, &r[key]["latency"]);
    }
    row("", "GET /healthz, idle", &r["healthz_idle"]);
    row("", "GET /healthz, during the load", &r["healthz_under_load"]);
    println!("\nHTTP throughput / in-process: {}x", num(&r["http_throughput_ratio"]));
    let cpu = &r["cpu"];
    println!(
        "CPU per run: in-process {} ms; over HTTP {} ms, of which the clients and probe {} ms and the server {} ms",
        num(&cpu["in_process_ms_per_run"]),
        num(&cpu["over_http_ms_per_run"]),
        num(&cpu["over_http_clients_ms_per_run"]),
        num(&cpu["over_http_server_ms_per_run"])
    );
    println!(
        "the clients took {} of the machine's {} cores during the HTTP runs; bound by the CPU alone, the ratio would be {}x",
        num(&cpu["clients_share_of_the_machine"]),
        cpu["cores"],
        num(&cpu["cpu_bound_ratio"])
    );
    println!("errors: {}", r["errors"].as_array().map_or(0, Vec::len));
}
