//! `domicile bench-cluster`: what a cluster costs and gives, measured on
//! real `domicile serve` processes and a real NATS server, in one run:
//!
//! - the write latency of a node that ships each write to JetStream before
//!   acknowledging it, against a single node that does not (same machine,
//!   same run), and through a node that forwards to the holder;
//! - the same total load (residents running the mobility footprint) on one
//!   node, then spread over three;
//! - the time to move a demo-sized resident (`domicile demo`'s `me`, every
//!   sample import) from node to node;
//! - the time until a killed node's resident is served again.
//!
//! Scratch homes, deleted afterwards.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use domicile_home::Home;
use domicile_host::Clock;
use serde_json::{json, Value};

use crate::server::{percentiles, Session};

const GPX_IMPORTER: &str = "io.domicile.sample.gpx-importer";
const FOOTPRINT: &str = "io.domicile.sample.mobility-footprint";
const TRIP: &str = "io.domicile.mobility.trip";
const GPX: &[u8] = include_bytes!("../../../sample-apps/data/week-around-nantes.gpx");
/// Short, so that the failover is measured in seconds.
const LEASE_S: &str = "3";

pub struct ClusterBenchOptions {
    pub nats: domicile_cluster::NatsAccess,
    /// The cluster's key; a scratch one when none is given.
    pub key_file: Option<PathBuf>,
    pub residents: usize,
    pub runs: usize,
    pub writes: usize,
    pub json: bool,
}

/// A `domicile serve` process, killed when dropped.
struct Node {
    child: Child,
    url: String,
}

impl Node {
    fn start(home: &Path, args: &[&str], log: &Path) -> Result<Node> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--home")
            .arg(home)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .context("cannot start `domicile serve`")?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut first = String::new();
        stdout.read_line(&mut first)?;
        let Some(url) = first.trim().strip_prefix("domicile: serving ") else {
            bail!("`domicile serve` did not start (see {}): {first:?}", log.display());
        };
        // The rest of its output is read and dropped, so that it never blocks.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Ok(Node { child, url: url.trim_end_matches('/').to_owned() })
    }

    fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(120))).build().into()
}

/// The operator's side of the admin API, with the cluster's token.
struct Operator {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl Operator {
    /// Places a new resident (on `node`, or where the cluster chooses),
    /// signs them in at their node's URL in `urls` (or the node asked, on a
    /// single node), and installs the
    /// mobility apps with a week of trips.
    fn resident(&self, name: &str, node: Option<&str>, urls: &[(String, String)]) -> Result<Session> {
        let mut reply = self
            .agent
            .post(format!("{}/api/v1/admin/residents", self.base))
            .header("authorization", &format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .send(json!({ "name": name, "node": node }).to_string())
            .with_context(|| format!("adding resident {name}"))?;
        let added: Value = serde_json::from_str(&reply.body_mut().read_to_string()?)?;
        // A single node names none.
        let holder = added["node"].as_str().unwrap_or_default();
        let base = urls.iter().find(|(n, _)| n == holder).map_or(&self.base, |(_, url)| url);
        let session = Session::sign_in(base, name, added["password"].as_str().context("a password")?)?;
        for (app, grant) in [(GPX_IMPORTER, format!("{TRIP}:write")), (FOOTPRINT, format!("{TRIP}:read"))] {
            let body = json!({ "app": app, "grants": [grant] }).to_string();
            session.post("/api/v1/apps", "application/json", body.as_bytes())?;
        }
        let import = format!("/api/v1/apps/{GPX_IMPORTER}/import?file=week.gpx");
        session.post(&import, "application/octet-stream", GPX)?;
        Ok(session)
    }
}

/// A home in `dir` ready to install from the sample catalogue, and its
/// operator's token. Its first resident is not `me`, which n1's home has:
/// a homonym would be set aside (exported) when `me` moves there.
fn home(dir: &Path) -> Result<String> {
    let (home, _) = domicile_samples::create_with_sample_catalogue(dir, &"spare".parse()?, Clock::System)?;
    Ok(home.new_operator_token()?)
}

/// Times `writes` documents written one after another by `session`.
fn write_latency(session: &Session, writes: usize, tag: &str) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(writes);
    for n in 0..writes {
        let body = json!({ "id": format!("{tag}-{n}"), "body": trip(n) }).to_string();
        let started = Instant::now();
        session.post(&format!("/api/v1/docs/{TRIP}"), "application/json", body.as_bytes())?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

/// Times `reads` of a page of one document by `session`, one after
/// another: the same session and placement checks as a write, no shipping.
fn read_latency(session: &Session, reads: usize) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(reads);
    for _ in 0..reads {
        let started = Instant::now();
        session.get(&format!("/api/v1/docs/{TRIP}?limit=1"))?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

fn trip(n: usize) -> Value {
    let day = n % 28 + 1;
    json!({
        "start": format!("2026-03-{day:02}T08:00:00Z"), "end": format!("2026-03-{day:02}T09:00:00Z"),
        "date": format!("2026-03-{day:02}"), "month": "2026-03",
        "distance_m": 1000 + n, "duration_s": 600, "mode": "bike",
    })
}

/// Every session runs the footprint `runs` times, all at once; runs per
/// second over the whole, and the latencies.
fn load(sessions: &[Session], runs: usize) -> Result<Value> {
    let ready = Arc::new(std::sync::Barrier::new(sessions.len()));
    let started = Instant::now();
    let samples = std::thread::scope(|scope| {
        let workers: Vec<_> = sessions
            .iter()
            .map(|session| {
                let ready = ready.clone();
                scope.spawn(move || {
                    ready.wait();
                    (0..runs).map(|_| session.run(FOOTPRINT)).collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a load thread panicked")).collect::<Result<Vec<_>>>()
    })?;
    let elapsed = started.elapsed();
    let samples: Vec<Duration> = samples.into_iter().flatten().collect();
    let rate = samples.len() as f64 / elapsed.as_secs_f64();
    Ok(json!({ "runs_per_s": (rate * 10.0).round() / 10.0, "latency": percentiles(samples) }))
}

/// Polls until `done` holds, `patience` at most.
fn wait_for(what: &str, patience: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let started = Instant::now();
    while !done()? {
        if started.elapsed() > patience {
            bail!("waited {} s for {what}", patience.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

pub async fn run(options: ClusterBenchOptions) -> Result<()> {
    if options.residents == 0 || options.runs == 0 || options.writes == 0 {
        bail!("--residents, --runs and --writes must be at least 1");
    }
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let dir = |name: &str| -> PathBuf { scratch.path().join(name) };
    let key_file = match &options.key_file {
        Some(file) => file.clone(),
        None => {
            let file = dir("cluster.key");
            domicile_cluster::ClusterKey::generate().write_new(&file)?;
            file
        }
    };
    let key = domicile_cluster::ClusterKey::load(&key_file)?;
    let observer = domicile_cluster::Cluster::observe(&options.nats, &key).await;
    if let Ok(observer) = &observer {
        if observer.holds_a_cluster().await? {
            bail!(
                "the NATS server at {} already holds a domicile cluster (an earlier run's, perhaps): give the bench \
                 a NATS server of its own, with an empty store (`nats-server -js -sd \"$(mktemp -d)\"`)",
                options.nats.url
            );
        }
    }
    eprintln!("preparing: a demo home for n1 (every sample import), homes for n2, n3 and a single node");
    let demo = Command::new(std::env::current_exe()?).arg("demo").arg("--dir").arg(dir("n1")).output()?;
    if !demo.status.success() {
        bail!("`domicile demo` failed: {}", String::from_utf8_lossy(&demo.stderr));
    }
    // n1 joins first and shares its operator's token with the cluster.
    let token = Home::open(&dir("n1"), Clock::System, &mut |_| {})?.new_operator_token()?;
    for name in ["n2", "n3"] {
        home(&dir(name))?;
    }
    let solo_token = home(&dir("solo"))?;

    let log = |name: &str| dir(&format!("{name}.log"));
    let mut nats_args = options.nats.to_args();
    nats_args.extend(["--cluster-key".to_owned(), key_file.display().to_string()]);
    let cluster = |name: &str| -> Result<Node> {
        let mut args: Vec<&str> = nats_args.iter().map(String::as_str).collect();
        args.extend(["--node", name, "--lease-s", LEASE_S]);
        Node::start(&dir(name), &args, &log(name))
    };
    let solo = Node::start(&dir("solo"), &[], &log("solo"))?;
    let mut nodes = vec![cluster("n1")?];
    let observer = domicile_cluster::Cluster::observe(&options.nats, &key).await?;
    let live = |count: usize| {
        let observer = &observer;
        move || -> Result<bool> {
            let handle = tokio::runtime::Handle::current();
            Ok(tokio::task::block_in_place(|| handle.block_on(observer.live_nodes()))?.len() == count)
        }
    };
    wait_for("n1 to be live", Duration::from_secs(30), live(1))?;
    nodes.push(cluster("n2")?);
    nodes.push(cluster("n3")?);
    wait_for("three live nodes", Duration::from_secs(30), live(3))?;
    let urls: Vec<(String, String)> =
        ["n1", "n2", "n3"].iter().zip(&nodes).map(|(n, node)| (n.to_string(), node.url.clone())).collect();
    let operator = Operator { agent: agent(), base: nodes[0].url.clone(), token };

    // 1. Write latency: shipped to JetStream first, or not.
    eprintln!("measuring the write latency ({} writes each way)", options.writes);
    let solo_operator = Operator { agent: agent(), base: solo.url.clone(), token: solo_token };
    let alone = solo_operator.resident("writer", None, &[])?;
    let shipped = operator.resident("writer", Some("n1"), &urls)?;
    let forwarded = shipped.through(&nodes[1].url);
    write_latency(&alone, 20, "warm")?;
    write_latency(&shipped, 20, "warm")?;
    let (mut local, mut cluster_writes, mut through) = (Vec::new(), Vec::new(), Vec::new());
    let (mut local_reads, mut cluster_reads) = (Vec::new(), Vec::new());
    // Interleaved, so that all see the same machine.
    for round in 0..10 {
        let each = options.writes.div_ceil(10);
        local.extend(write_latency(&alone, each, &format!("l{round}"))?);
        cluster_writes.extend(write_latency(&shipped, each, &format!("c{round}"))?);
        through.extend(write_latency(&forwarded, each, &format!("f{round}"))?);
        local_reads.extend(read_latency(&alone, each)?);
        cluster_reads.extend(read_latency(&shipped, each)?);
    }
    let p50 = |samples: &[Duration]| {
        let mut sorted = samples.to_vec();
        sorted.sort();
        crate::bench::quantile(&sorted, 0.5).as_secs_f64()
    };
    let shipping_ratio = p50(&cluster_writes) / p50(&local);
    // What the cluster adds to a write beyond what it adds to a read (the
    // session and placement lookups in JetStream): the shipping itself.
    let shipping_ms = ((p50(&cluster_writes) - p50(&local)) - (p50(&cluster_reads) - p50(&local_reads))) * 1000.0;
    let sealing_us = sealing_cost_per_write(&key);
    let sealing_share = sealing_us / 1e6 / p50(&cluster_writes);
    drop(solo);

    // 2. The same load on one node, then over three.
    eprintln!("measuring {} residents x {} runs on one node, then over three", options.residents, options.runs);
    let on_one: Vec<Session> = (0..options.residents)
        .map(|i| operator.resident(&format!("one{i}"), Some("n1"), &urls))
        .collect::<Result<_>>()?;
    let on_three: Vec<Session> = (0..options.residents)
        .map(|i| operator.resident(&format!("three{i}"), Some(["n1", "n2", "n3"][i % 3]), &urls))
        .collect::<Result<_>>()?;
    load(&on_one[..1], 2)?;
    load(&on_three[..3.min(on_three.len())], 2)?;
    let one_node = load(&on_one, options.runs)?;
    let three_nodes = load(&on_three, options.runs)?;
    let scale_ratio =
        three_nodes["runs_per_s"].as_f64().unwrap_or(0.0) / one_node["runs_per_s"].as_f64().unwrap_or(1.0);

    // 3. Moves of the demo's `me` (every sample import) and back, while
    // she writes through n3: the longest a write of hers waited.
    eprintln!("moving the demo resident `me` from n1 to n2 and back, while she writes");
    let me: domicile_store::ResidentName = "me".parse()?;
    let mut reply = operator
        .agent
        .post(format!("{}/api/v1/admin/residents/me/password", operator.base))
        .header("authorization", &format!("Bearer {}", operator.token))
        .send_empty()?;
    let reset: Value = serde_json::from_str(&reply.body_mut().read_to_string()?)?;
    let writer = Session::sign_in(&nodes[2].url, "me", reset["password"].as_str().context("a password")?)?;
    let moving = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let longest_wait = {
        let moving = moving.clone();
        std::thread::spawn(move || -> Result<(Duration, usize)> {
            let (mut longest, mut writes) = (Duration::ZERO, 0);
            while moving.load(std::sync::atomic::Ordering::SeqCst) {
                let body = json!({ "id": format!("during-move-{writes}"), "body": trip(writes) }).to_string();
                let started = Instant::now();
                // Refused (503) while she is stopped: tried again until acknowledged.
                while writer.post(&format!("/api/v1/docs/{TRIP}"), "application/json", body.as_bytes()).is_err() {
                    if started.elapsed() > Duration::from_secs(60) {
                        bail!("a write of `me` waited more than 60 s during a move");
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                longest = longest.max(started.elapsed());
                writes += 1;
            }
            Ok((longest, writes))
        })
    };
    let mut moves = Vec::new();
    for to in ["n2", "n1", "n2", "n1"] {
        let started = Instant::now();
        let moved = observer.move_resident(&me, &to.parse()?, Duration::from_secs(180)).await?;
        if moved.record.state != domicile_cluster::MoveState::Done {
            bail!("the move of `me` to {to} failed: {:?}", moved.record.reason);
        }
        moves.push(started.elapsed());
    }
    moving.store(false, std::sync::atomic::Ordering::SeqCst);
    let (longest_wait, writes_during_moves) = longest_wait.join().expect("the writer panicked")?;

    // 4. kill -9 of n3: the time until its resident writes again through n1.
    eprintln!("killing n3 and timing until its residents are served again");
    let victim = on_three.iter().find(|s| s.base() == nodes[2].url).context("a resident of n3")?.through(&nodes[0].url);
    nodes[2].kill();
    let killed = Instant::now();
    let mut n = 0;
    wait_for("n3's resident to be served again", Duration::from_secs(60), || {
        n += 1;
        let body = json!({ "id": format!("after-kill-{n}"), "body": trip(n) }).to_string();
        Ok(victim.post(&format!("/api/v1/docs/{TRIP}"), "application/json", body.as_bytes()).is_ok())
    })?;
    let failover = killed.elapsed();

    let ms = |d: Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
    let report = json!({
        "writes": {
            "single_node": percentiles(local),
            "cluster_holder": percentiles(cluster_writes),
            "cluster_forwarded": percentiles(through),
            "shipping_p50_ratio": (shipping_ratio * 100.0).round() / 100.0,
            "reads_single_node": percentiles(local_reads),
            "reads_cluster_holder": percentiles(cluster_reads),
            "shipping_p50_ms": (shipping_ms * 100.0).round() / 100.0,
            "sealing_us_per_write": (sealing_us * 10.0).round() / 10.0,
            "sealing_share_of_holder_p50": (sealing_share * 1000.0).round() / 1000.0,
        },
        "load": {
            "residents": options.residents,
            "runs_per_resident": options.runs,
            "one_node": one_node,
            "three_nodes": three_nodes,
            "three_over_one": (scale_ratio * 100.0).round() / 100.0,
        },
        "move_demo_resident_ms": moves.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "writes_during_moves": writes_during_moves,
        "longest_write_wait_during_moves_ms": ms(longest_wait),
        "failover_ms": ms(failover),
        "lease_s": LEASE_S.parse::<u64>()?,
    });
    if options.json {
        println!("{report}");
    } else {
        print_report(&report);
    }
    drop(nodes);
    Ok(())
}

/// What the cluster's key costs one write, in microseconds, measured
/// in-process over 20,000 writes: its record sealed for the resident's
/// log (2 KiB, about a trip document with its index and feed entries),
/// and the two entries every request opens (its session and the
/// resident's placement).
fn sealing_cost_per_write(key: &domicile_cluster::ClusterKey) -> f64 {
    use domicile_cluster::untrusted::{open_entry, seal_entry};
    let record = vec![b'x'; 2048];
    let session = json!({ "resident": "writer", "csrf": "0".repeat(64), "expires_ms": 1u64 << 42 }).to_string();
    let placement = json!({ "node": "n1", "since_ms": 1u64 << 42 }).to_string();
    let sealed_session = seal_entry(key, "domicile-sessions", "k", session.as_bytes());
    let sealed_placement = seal_entry(key, "domicile-placement", "writer", placement.as_bytes());
    const WRITES: u32 = 20_000;
    let started = Instant::now();
    for _ in 0..WRITES {
        std::hint::black_box(seal_entry(key, "domicile-accounts", "writer", std::hint::black_box(&record)));
        std::hint::black_box(open_entry(key, "domicile-sessions", "k", &sealed_session).is_ok());
        std::hint::black_box(open_entry(key, "domicile-placement", "writer", &sealed_placement).is_ok());
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(WRITES)
}

fn print_report(r: &Value) {
    let num = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x}"));
    let latency = |v: &Value| format!("p50 {} ms, p99 {} ms", num(&v["p50_ms"]), num(&v["p99_ms"]));
    let w = &r["writes"];
    println!("domicile bench-cluster: 3 nodes and a NATS server on this machine\n");
    println!("write one document, one after another:");
    println!("  single node (no cluster)        {}", latency(&w["single_node"]));
    println!("  cluster, the holder             {}", latency(&w["cluster_holder"]));
    println!("  cluster, through another node   {}", latency(&w["cluster_forwarded"]));
    println!("  a write on the holder: {}x the single node's p50", num(&w["shipping_p50_ratio"]));
    println!("read one document (the same session and placement lookups, no shipping):");
    println!("  single node (no cluster)        {}", latency(&w["reads_single_node"]));
    println!("  cluster, the holder             {}", latency(&w["reads_cluster_holder"]));
    println!("  what shipping to JetStream adds to a write's p50: {} ms", num(&w["shipping_p50_ms"]));
    println!(
        "  sealing and checking what the write reads and ships (cluster key): {} us, {} of the holder's p50\n",
        num(&w["sealing_us_per_write"]),
        num(&w["sealing_share_of_holder_p50"])
    );
    let l = &r["load"];
    println!("{} residents x {} runs of the mobility footprint, all at once:", l["residents"], l["runs_per_resident"]);
    for (label, key) in [("on one node", "one_node"), ("over three nodes", "three_nodes")] {
        println!("  {label:<18} {:>8} runs/s   {}", num(&l[key]["runs_per_s"]), latency(&l[key]["latency"]));
    }
    println!("  three nodes / one node: {}x\n", num(&l["three_over_one"]));
    println!("move of the demo resident `me` (every sample import): {} ms", r["move_demo_resident_ms"]);
    println!(
        "  she wrote meanwhile: {} writes, the longest waited {} ms (refused while she was stopped, then acknowledged)",
        r["writes_during_moves"],
        num(&r["longest_write_wait_during_moves_ms"])
    );
    println!(
        "kill -9 of a node to its resident served again (lease {} s): {} ms",
        r["lease_s"],
        num(&r["failover_ms"])
    );
}
