//! `/healthz` and `/metrics`: whether the server answers, and counts in
//! Prometheus text format. Labels are outcomes and status classes only:
//! nothing names a resident, an app or a doctype.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as Extract;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::State;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    /// `run`, `import` or `trigger` (an app running on its own).
    kind: &'static str,
    /// `ok`, `app-failed` (the app's error, a trap or a limit) or `refused`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// `2xx`, `4xx`, ...
    class: String,
}

pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    run_seconds: Histogram,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histogram,
    running: Gauge,
    residents: Gauge,
    trigger_looks_due: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("domicile");
        let runs = Family::<RunLabels, Counter>::default();
        registry.register("app_runs", "App invocations (runs and imports) by outcome", runs.clone());
        let run_seconds = Histogram::new(exponential_buckets(0.0005, 2.5, 14));
        registry.register("app_run_seconds", "Time an app invocation took, queueing included", run_seconds.clone());
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by status class", requests.clone());
        let request_seconds = Histogram::new(exponential_buckets(0.0001, 2.5, 16));
        registry.register("http_request_seconds", "Time to answer an HTTP request", request_seconds.clone());
        let running = Gauge::default();
        registry.register("app_invocations_running", "App invocations holding an instance slot now", running.clone());
        let residents = Gauge::default();
        registry.register("residents", "Residents of this home", residents.clone());
        let trigger_looks_due = Gauge::default();
        registry.register(
            "trigger_looks_due",
            "Residents whose triggers need a look the scheduler has not had yet (after a start: those written or due since the last look)",
            trigger_looks_due.clone(),
        );
        Metrics { registry, runs, run_seconds, requests, request_seconds, running, residents, trigger_looks_due }
    }

    pub fn request(&self, status: u16, elapsed: Duration) {
        self.requests.get_or_create(&RequestLabels { class: format!("{}xx", status / 100) }).inc();
        self.request_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn run(&self, import: bool, outcome: &'static str, elapsed: Duration) {
        let kind = if import { "import" } else { "run" };
        self.runs.get_or_create(&RunLabels { kind, outcome }).inc();
        self.run_seconds.observe(elapsed.as_secs_f64());
    }

    /// A trigger's run (an app running on its own), by outcome.
    pub fn trigger_run(&self, outcome: &'static str, elapsed: Duration) {
        self.runs.get_or_create(&RunLabels { kind: "trigger", outcome }).inc();
        self.run_seconds.observe(elapsed.as_secs_f64());
    }

    /// How many residents' triggers wait for a look, at the end of a tick.
    pub fn trigger_looks_due(&self, residents: usize) {
        self.trigger_looks_due.set(residents.try_into().unwrap_or(i64::MAX));
    }

    fn encode(&self, state: &State) -> String {
        self.running.set(state.runtime.running() as i64);
        if let Ok(residents) = state.home.store().residents() {
            self.residents.set(residents.len() as i64);
        }
        use prometheus_client::encoding::text;
        let mut out = String::new();
        text::encode_registry(&mut out, &self.registry).expect("writing to a String");
        let mut now = Registry::with_prefix("domicile");
        now.register_collector(Box::new(Readings::read(state)));
        text::encode_registry(&mut out, &now).expect("writing to a String");
        text::encode_eof(&mut out).expect("writing to a String");
        out
    }
}

/// Totals kept elsewhere (the runtime's, a cluster node's), read as they
/// stand at each scrape, and gauges: a node's part in its cluster only on a
/// node of one.
#[derive(Debug)]
struct Readings(Vec<(&'static str, &'static str, Reading)>);

#[derive(Debug, Clone, Copy)]
enum Reading {
    Count(u64),
    Level(i64),
    Seconds(f64),
}

impl Readings {
    fn read(state: &State) -> Readings {
        let denials = (
            "denials",
            "Accesses refused to apps (missing grants, undeclared destinations)",
            Reading::Count(state.runtime.denials_total()),
        );
        let mut readings = vec![denials];
        if let Some(node) = &state.cluster {
            readings.extend(Readings::cluster(node));
        }
        Readings(readings)
    }

    fn cluster(node: &crate::cluster::ClusterNode) -> Vec<(&'static str, &'static str, Reading)> {
        use Reading::{Count, Level, Seconds};
        let (events, shipped) = (&node.events, node.cluster.logs().shipped());
        let read = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let heartbeat_age = domicile_cluster::now_ms().saturating_sub(read(&events.last_beat_ms)) as f64 / 1000.0;
        let moves = node.moves.lock().map_or(0, |m| m.len()) as i64;
        vec![
            (
                "cluster_forwarded_requests",
                "Requests forwarded to the node holding their resident",
                Count(read(&events.forwarded)),
            ),
            (
                "cluster_forward_failures",
                "Requests that could not be forwarded (their node unreachable)",
                Count(read(&events.forward_failures)),
            ),
            (
                "cluster_peer_refusals",
                "Requests on the peer port that no node of the cluster sent (refused, 403)",
                Count(read(&events.peer_refusals)),
            ),
            (
                "cluster_takeovers",
                "Residents this node took over from a node that stopped",
                Count(read(&events.takeovers)),
            ),
            (
                "cluster_takeover_microseconds",
                "Time taking residents over took (claim and rebuild), summed",
                Count(read(&events.takeover_micros)),
            ),
            (
                "cluster_copies_released",
                "Stale copies of residents another node took over, dropped here",
                Count(read(&events.copies_released)),
            ),
            (
                "cluster_missed_leases",
                "Times this node's heartbeats stopped past its lease",
                Count(read(&events.missed_leases)),
            ),
            ("cluster_shipped_writes", "Committed writes shipped to the residents' logs", Count(shipped.writes)),
            ("cluster_shipped_snapshots", "Snapshots shipped to the residents' logs", Count(shipped.snapshots)),
            ("cluster_shipped_bytes", "Bytes of writes and snapshots shipped", Count(shipped.bytes)),
            (
                "cluster_ship_microseconds",
                "Time shipping took, JetStream's acknowledgement included, summed",
                Count(shipped.micros),
            ),
            ("cluster_ship_failures", "Writes JetStream did not take (the write failed)", Count(shipped.failures)),
            (
                "cluster_refused_entries",
                "Entries read from NATS that were refused (malformed, or naming what they may not), never acted on",
                Count(domicile_cluster::refused_entries()),
            ),
            (
                "cluster_fenced_writes",
                "Writes refused because another node had taken the resident over",
                Count(shipped.fenced),
            ),
            ("cluster_live_nodes", "Live nodes at this node's last look", Level(read(&events.live_nodes) as i64)),
            (
                "cluster_heartbeat_age_seconds",
                "Time since this node's last heartbeat went through",
                Seconds(heartbeat_age),
            ),
            ("cluster_moves_in_progress", "Moves of residents this node takes part in", Level(moves)),
        ]
    }
}

impl Collector for Readings {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        fn one(
            encoder: &mut DescriptorEncoder<'_>,
            name: &str,
            help: &str,
            metric: impl EncodeMetric,
        ) -> std::fmt::Result {
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
        }
        for &(name, help, reading) in &self.0 {
            match reading {
                Reading::Count(n) => one(&mut encoder, name, help, ConstCounter::new(n))?,
                Reading::Level(n) => one(&mut encoder, name, help, ConstGauge::new(n))?,
                Reading::Seconds(s) => one(&mut encoder, name, help, ConstGauge::new(s))?,
            }
        }
        Ok(())
    }
}

pub fn routes() -> Router<Arc<State>> {
    Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics))
}

async fn healthz(Extract(state): Extract<Arc<State>>) -> impl IntoResponse {
    if state.home.store().is_available() {
        (axum::http::StatusCode::OK, "ok\n")
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "the store does not answer\n")
    }
}

async fn metrics(Extract(state): Extract<Arc<State>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.encode(&state),
    )
}
