//! `domicile bench-campaign`: what a campaign costs, end to end over HTTP,
//! against Prio3 alone in the same run.
//!
//! Two `domicile aggregator serve` processes (this same binary) on
//! loopback aggregate the energy histogram of the sample campaign (11
//! buckets) for `--reports` participants:
//! - a participant's report (shards, proof, two HPKE encryptions), against
//!   `prio`'s shards alone of the same measurement;
//! - its bytes, as the leader receives it (JSON, attested);
//! - the leader taking them (`POST /reports`, from `--clients` threads);
//! - the two verifying them over HTTP (two round trips to the helper per
//!   report), against the same verification in one process;
//! - from the deadline to the result: both aggregators restarted past the
//!   deadline on their stores, then `POST /collect` (the aggregate shares
//!   of every report, and both signatures), checked to be the exact
//!   histogram of the answers.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use domicile_campaign::{AggregatorRole, AttestedReport, Attester, Campaign};
use prio::vdaf::prio3::Prio3Histogram;
use prio::vdaf::Client;
use serde_json::{json, Value};

/// What `domicile bench-campaign` was asked.
pub struct Options {
    pub reports: usize,
    pub clients: usize,
    pub json: bool,
}

/// The sample energy campaign's buckets (kWh of a month).
const BOUNDS: [f64; 10] = [150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 450.0, 500.0, 600.0, 800.0];
/// How many reports the in-process baselines take (they are per report).
const BASELINE_SAMPLE: usize = 500;

/// A participant's answer: spread over every bucket.
fn kwh(i: usize) -> f64 {
    80.0 + (i * 37 % 900) as f64
}

/// A running `domicile aggregator serve` process, stopped when dropped.
pub struct AggregatorProcess {
    child: Child,
    /// Where it serves.
    pub url: String,
}

impl Drop for AggregatorProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// This same binary, as a command.
fn domicile(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the running binary's path"));
    command.args(args).env_remove("DOMICILE_HOME").stdin(Stdio::null());
    command
}

fn ok(args: &[&str]) -> Result<Value> {
    let out = domicile(args).output()?;
    if !out.status.success() {
        bail!("domicile {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

/// Writes and signs the campaign with `deadline_ms`, as its organiser.
fn sign(dir: &Path, keys: &[Value; 2], leader_port: u16, deadline_ms: u64) -> Result<Campaign> {
    let aggregator = |name: &str, url: String, keys: &Value| json!({ "name": name, "url": url, "hpke_public_key": keys["public_key"], "result_key": keys["result_key"] });
    let campaign = json!({
        "id": "bench.energie-janvier",
        "organiser": "bench-campaign",
        "purpose": "measure what a campaign costs",
        "question": { "app": "io.domicile.sample.energy-insights", "computes": "kWh of January", "unit": "kWh", "answer": "" },
        "aggregation": { "type": "histogram", "bounds": BOUNDS },
        "aggregators": [
            aggregator("leader", format!("http://127.0.0.1:{leader_port}"), &keys[0]),
            aggregator("helper", "http://127.0.0.1:2".into(), &keys[1]),
        ],
        "minimum_batch": 10,
        "deadline_ms": deadline_ms,
        "published_to": "the bench",
    });
    std::fs::write(path(dir, "campaign.json"), serde_json::to_vec_pretty(&campaign)?)?;
    ok(&["campaign", "sign", &path(dir, "campaign.json"), "--key", &path(dir, "organiser.key")])?;
    Ok(serde_json::from_slice(&std::fs::read(path(dir, "campaign.json"))?)?)
}

/// Starts one aggregator (`role`: `leader` or `helper`) of the signed
/// campaign in `dir`, with the `domicile` binary `exe` and `more`
/// arguments. `dir` holds what its organisations made: `campaign.json`
/// (signed), `organiser.pub`, `ROLE.secret`, `verify` and `peer-token`;
/// its store goes to `ROLE-store`.
pub fn serve_aggregator(exe: &Path, dir: &Path, role: &str, more: &[&str]) -> Result<AggregatorProcess> {
    let owned = [
        "aggregator",
        "serve",
        "--role",
        role,
        "--campaign",
        &path(dir, "campaign.json"),
        "--organiser",
        &path(dir, "organiser.pub"),
        "--secret",
        &path(dir, &format!("{role}.secret")),
        "--verify-key",
        &path(dir, "verify"),
        "--peer-token",
        &path(dir, "peer-token"),
        "--store",
        &path(dir, &format!("{role}-store")),
    ]
    .map(str::to_owned);
    let mut args: Vec<&str> = owned.iter().map(String::as_str).collect();
    args.extend(more);
    let mut child = Command::new(exe)
        .args(&args)
        .env_remove("DOMICILE_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut first = String::new();
    BufReader::new(child.stdout.take().context("its stdout")?).read_line(&mut first)?;
    let url = first
        .trim()
        .strip_prefix("domicile aggregator: serving ")
        .with_context(|| format!("the aggregator did not start: {first:?}"))?
        .to_owned();
    Ok(AggregatorProcess { child, url })
}

/// One of the bench's aggregators, started by this same binary.
fn serve(dir: &Path, role: &str, more: &[&str]) -> Result<AggregatorProcess> {
    serve_aggregator(&std::env::current_exe()?, dir, role, more)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str, body: &Value) -> Result<(u16, Value)> {
    let mut response = agent.post(url).send_json(body)?;
    Ok((response.status().as_u16(), response.body_mut().read_json().unwrap_or(Value::Null)))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}

fn rate(count: usize, d: Duration) -> f64 {
    (count as f64 / d.as_secs_f64()).round()
}

pub async fn run(options: Options) -> Result<()> {
    let json = options.json;
    let report = tokio::task::spawn_blocking(move || measure(options)).await??;
    crate::emit(&report, json, table);
    Ok(())
}

fn measure(options: Options) -> Result<Value> {
    let Options { reports: count, clients, .. } = options;
    if count < 10 {
        bail!("--reports is at least the campaign's minimum batch, 10");
    }
    let scratch = tempfile::tempdir()?;
    let dir = scratch.path();
    ok(&["keygen", "--out", &path(dir, "organiser")])?;
    let keys = [
        ok(&["--json", "aggregator", "keygen", "--out", &path(dir, "leader")])?,
        ok(&["--json", "aggregator", "keygen", "--out", &path(dir, "helper")])?,
    ];
    let verify_key = [0x5au8; 32];
    std::fs::write(path(dir, "verify"), hex::encode(verify_key))?;
    std::fs::write(path(dir, "peer-token"), "bench-campaign-token")?;
    let leader_port = free_port()?;
    let far = domicile_aggregator::now_ms() + 24 * 3600 * 1000;
    let campaign = sign(dir, &keys, leader_port, far)?;
    let node = Attester::from_seed([7; 32]);

    // A participant's report, against Prio3's shards alone.
    let started = Instant::now();
    let mut made = Vec::with_capacity(count);
    for i in 0..count {
        made.push(campaign.report(&json!(kwh(i)), None, domicile_aggregator::now_ms())?);
    }
    let report_cost = started.elapsed();
    let prio = Prio3Histogram::new_histogram(2, BOUNDS.len() + 1, 4)?;
    let started = Instant::now();
    for i in 0..count {
        let bucket = BOUNDS.partition_point(|b| *b <= kwh(i));
        std::hint::black_box(prio.shard(b"bench", &bucket, &[i as u8; 16])?);
    }
    let shard_cost = started.elapsed();
    let attested: Vec<AttestedReport> = made
        .into_iter()
        .enumerate()
        .map(|(i, r)| node.attest(r, &node.participant(&campaign.id, &format!("r{i}"))))
        .collect();
    let bytes: usize = attested.iter().map(|a| serde_json::to_vec(a).map_or(0, |b| b.len())).sum();

    // The same verification in one process, as a baseline.
    let secret = |role: &str| -> Result<String> {
        let text = std::fs::read_to_string(path(dir, &format!("{role}.secret")))?;
        text.lines().next().map(str::to_owned).context("an aggregator's secret file")
    };
    let roles = [
        AggregatorRole::new(campaign.clone(), 0, &secret("leader")?, verify_key)?,
        AggregatorRole::new(campaign.clone(), 1, &secret("helper")?, verify_key)?,
    ];
    let sample = count.min(BASELINE_SAMPLE);
    let started = Instant::now();
    for a in &attested[..sample] {
        let (mine, theirs) = (roles[0].start(&a.report)?, roles[1].start(&a.report)?);
        let message = roles[0].combine(&mine.state, [&mine.verifier_share, &theirs.verifier_share])?;
        std::hint::black_box((roles[0].finish(&mine.state, &message)?, roles[1].finish(&theirs.state, &message)?));
    }
    let in_process_verify = started.elapsed() / sample as u32;

    // Over HTTP: the leader takes them while it verifies with the helper.
    let helper = serve(dir, "helper", &[])?;
    let addr = format!("127.0.0.1:{leader_port}");
    let leader =
        serve(dir, "leader", &["--helper", &helper.url.clone(), "--attester", &node.public_key(), "--addr", &addr])?;
    let started = Instant::now();
    let per_client = count.div_ceil(clients.max(1));
    let refused = std::thread::scope(|scope| {
        let sent: Vec<_> = attested
            .chunks(per_client)
            .map(|chunk| {
                let url = format!("{}/reports", leader.url);
                scope.spawn(move || -> Result<usize> {
                    let agent = agent();
                    let mut refused = 0;
                    for a in chunk {
                        if post(&agent, &url, &json!(a))?.0 != 202 {
                            refused += 1;
                        }
                    }
                    Ok(refused)
                })
            })
            .collect();
        sent.into_iter().map(|s| s.join().expect("a client thread")).sum::<Result<usize>>()
    })?;
    let taken = started.elapsed();
    if refused > 0 {
        bail!("the leader refused {refused} of the reports");
    }
    let status_url = format!("{}/status", leader.url);
    let verified = loop {
        let status: Value = agent().get(&status_url).call()?.body_mut().read_json()?;
        if status["counts"]["verified"].as_u64() == Some(count as u64) {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("not all verified after an hour: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(leader);
    drop(helper);

    // Past the deadline: both restarted on their stores, then collected.
    let campaign = sign(dir, &keys, leader_port, domicile_aggregator::now_ms())?;
    std::thread::sleep(Duration::from_millis(5));
    let helper = serve(dir, "helper", &[])?;
    let leader =
        serve(dir, "leader", &["--helper", &helper.url.clone(), "--attester", &node.public_key(), "--addr", &addr])?;
    let started = Instant::now();
    let (status, collected) = post(&agent(), &format!("{}/collect", leader.url), &json!({}))?;
    let collect = started.elapsed();
    if status != 200 {
        bail!("the collection failed ({status}): {collected}");
    }
    let mut expected = vec![0u64; BOUNDS.len() + 1];
    for i in 0..count {
        expected[BOUNDS.partition_point(|b| *b <= kwh(i))] += 1;
    }
    let exact = collected["results"][0]["aggregate"] == json!(expected);
    if !exact {
        bail!("the result is not the histogram of the answers: {collected}, expected {expected:?}");
    }

    Ok(json!({
        "campaign": campaign.id,
        "reports": count,
        "buckets": BOUNDS.len() + 1,
        "clients": clients,
        "report_us": (report_cost.as_secs_f64() * 1e6 / count as f64).round(),
        "prio_shard_us": (shard_cost.as_secs_f64() * 1e6 / count as f64).round(),
        "report_bytes": bytes / count,
        "taken_s": secs(taken),
        "taken_per_s": rate(count, taken),
        "verified_s": secs(verified),
        "verified_per_s": rate(count, verified),
        "in_process_verify_us": (in_process_verify.as_secs_f64() * 1e6).round(),
        "in_process_verified_per_s": (1.0 / in_process_verify.as_secs_f64()).round(),
        "deadline_to_result_ms": ms(collect),
        "exact": exact,
    }))
}

fn table(r: &Value) {
    let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
    println!(
        "bench-campaign: {} reports of an {}-bucket histogram, two aggregators over HTTP on loopback",
        r["reports"], r["buckets"]
    );
    println!();
    println!("| measure | domicile | baseline (same run) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| a participant's report (shards, proof, two HPKE encryptions) | {} us | Prio3's shards alone: {} us | {:.1}x |",
        f("report_us"),
        f("prio_shard_us"),
        f("report_us") / f("prio_shard_us").max(1.0)
    );
    println!("| bytes per report, attested, as JSON | {} | | |", r["report_bytes"]);
    println!(
        "| the leader taking them ({} clients) | {} reports/s ({} s) | | |",
        r["clients"],
        f("taken_per_s"),
        f("taken_s")
    );
    println!(
        "| both verifying them, over HTTP | {} reports/s ({} s after the first) | in one process: {} reports/s | {:.1}x |",
        f("verified_per_s"),
        f("verified_s"),
        f("in_process_verified_per_s"),
        f("in_process_verified_per_s") / f("verified_per_s").max(1.0)
    );
    println!("| from the deadline to the signed result (collect) | {} ms | | |", f("deadline_to_result_ms"));
    println!();
    println!("the result is the exact histogram of the answers: {}", r["exact"]);
}
