//! What domicile shows and measures of itself, dispatched to their crates:
//! `demo` (`domicile-samples`), `bench`, `bench-server`, `bench-residents`
//! and `bench-cluster` (`domicile-bench`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use domicile_samples::demo::DemoOptions;

use crate::verbs::serve::NatsArgs;

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct DemoArgs {
    /// Where to create the demo home (default ./domicile-demo, replaced if it is a previous demo).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Then serve the demo home's web UI at ADDR (default 127.0.0.1:8080) until Ctrl-C.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    pub serve: Option<std::net::SocketAddr>,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct BenchArgs {
    /// Empty invocations to time.
    #[arg(long, default_value_t = 2000)]
    pub invocations: usize,
    /// Trips the scan reads.
    #[arg(long, default_value_t = 100_000)]
    pub documents: usize,
    /// Rows of the imported load curve (the figure is 1,000,000).
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    /// Rounds of the arithmetic loop timed with and without epoch interruption.
    #[arg(long, default_value_t = 200_000_000)]
    pub spin: u64,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct BenchServerArgs {
    /// Residents running at once.
    #[arg(long, default_value_t = 20)]
    pub residents: usize,
    /// Runs of the mobility footprint per resident.
    #[arg(long, default_value_t = 25)]
    pub runs: usize,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct BenchClusterArgs {
    /// A NATS server with JetStream (`nats-server -js`), used by nothing else.
    #[arg(long, value_name = "NATS_URL")]
    pub cluster: String,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Residents running at once, for the load.
    #[arg(long, default_value_t = 12)]
    pub residents: usize,
    /// Runs of the mobility footprint per resident.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Documents written one after another, for the write latency.
    #[arg(long, default_value_t = 300)]
    pub writes: usize,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct BenchResidentsArgs {
    /// Residents to grow the home to.
    #[arg(long, default_value_t = 10_000)]
    pub residents: usize,
    /// Of them, residents with apps and data who sign in and run at the end.
    #[arg(long, default_value_t = 200)]
    pub active: usize,
}

/// `domicile demo [--serve [ADDR]]`; `run` runs the commands a `domicile`
/// beside the served demo sends it.
pub async fn demo(args: &DemoArgs, run: crate::control::Runner) -> Result<()> {
    let options =
        DemoOptions { dir: args.dir.clone(), then_serve: args.serve.is_some(), clock: crate::home::clock_from_env()? };
    let home = domicile_samples::demo::run(options).await?;
    match args.serve {
        Some(addr) => crate::verbs::serve::serve(home, addr, None, run).await,
        None => Ok(()),
    }
}

pub async fn bench(args: &BenchArgs, json: bool) -> Result<()> {
    let BenchArgs { invocations, documents, rows, spin } = *args;
    domicile_bench::bench::run(domicile_bench::bench::BenchOptions { invocations, documents, rows, spin, json }).await
}

pub async fn bench_server(args: &BenchServerArgs, json: bool) -> Result<()> {
    let options = domicile_bench::server::LoadOptions { residents: args.residents, runs: args.runs, json };
    domicile_bench::server::run(options).await
}

pub async fn bench_cluster(args: &BenchClusterArgs, json: bool) -> Result<()> {
    let access = args.nats.access(&args.cluster);
    access.check()?;
    let options = domicile_bench::cluster::ClusterBenchOptions {
        nats: access,
        key_file: args.nats.cluster_key_file().map(Path::to_owned),
        residents: args.residents,
        runs: args.runs,
        writes: args.writes,
        json,
    };
    domicile_bench::cluster::run(options).await
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct BenchCampaignArgs {
    /// Participants, each one report.
    #[arg(long, default_value_t = 10_000)]
    pub reports: usize,
    /// Threads sending the reports to the leader at once.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
}

pub async fn bench_campaign(args: &BenchCampaignArgs, json: bool) -> Result<()> {
    let options = domicile_bench::campaign::Options { reports: args.reports, clients: args.clients, json };
    domicile_bench::campaign::run(options).await
}

pub async fn bench_residents(args: &BenchResidentsArgs, json: bool) -> Result<()> {
    let options = domicile_bench::residents::Options { residents: args.residents, active: args.active, json };
    domicile_bench::residents::run(options).await
}
