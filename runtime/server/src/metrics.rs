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
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

/// A counter that follows a total kept elsewhere (the runtime's, the
/// cluster's): each scrape adds what no scrape added yet (`fetch_max`, so
/// concurrent scrapes never add twice).
#[derive(Default)]
struct Followed {
    counter: Counter,
    seen: AtomicU64,
}

impl Followed {
    fn register(registry: &mut Registry, name: &str, help: &str) -> Followed {
        let followed = Followed::default();
        registry.register(name, help, followed.counter.clone());
        followed
    }

    fn follow(&self, total: u64) {
        let seen = self.seen.fetch_max(total, Ordering::Relaxed);
        self.counter.inc_by(total.saturating_sub(seen));
    }
}

/// A node's part in a cluster, counted since it started.
struct ClusterMetrics {
    live_nodes: Gauge,
    heartbeat_age: Gauge<f64, AtomicU64>,
    moves: Gauge,
    forwarded: Followed,
    forward_failures: Followed,
    takeovers: Followed,
    takeover_micros: Followed,
    copies_released: Followed,
    missed_leases: Followed,
    shipped_writes: Followed,
    shipped_snapshots: Followed,
    shipped_bytes: Followed,
    ship_micros: Followed,
    ship_failures: Followed,
    fenced_writes: Followed,
}

impl ClusterMetrics {
    fn register(registry: &mut Registry) -> ClusterMetrics {
        let mut followed = |name: &str, help: &str| Followed::register(registry, name, help);
        let forwarded = followed("cluster_forwarded_requests", "Requests forwarded to the node holding their resident");
        let forward_failures =
            followed("cluster_forward_failures", "Requests that could not be forwarded (their node unreachable)");
        let takeovers = followed("cluster_takeovers", "Residents this node took over from a node that stopped");
        let takeover_micros =
            followed("cluster_takeover_microseconds", "Time taking residents over took (claim and rebuild), summed");
        let copies_released =
            followed("cluster_copies_released", "Stale copies of residents another node took over, dropped here");
        let missed_leases = followed("cluster_missed_leases", "Times this node's heartbeats stopped past its lease");
        let shipped_writes = followed("cluster_shipped_writes", "Committed writes shipped to the residents' logs");
        let shipped_snapshots = followed("cluster_shipped_snapshots", "Snapshots shipped to the residents' logs");
        let shipped_bytes = followed("cluster_shipped_bytes", "Bytes of writes and snapshots shipped");
        let ship_micros =
            followed("cluster_ship_microseconds", "Time shipping took, JetStream's acknowledgement included, summed");
        let ship_failures = followed("cluster_ship_failures", "Writes JetStream did not take (the write failed)");
        let fenced_writes =
            followed("cluster_fenced_writes", "Writes refused because another node had taken the resident over");
        let live_nodes = Gauge::default();
        registry.register("cluster_live_nodes", "Live nodes at this node's last look", live_nodes.clone());
        let heartbeat_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "cluster_heartbeat_age_seconds",
            "Time since this node's last heartbeat went through",
            heartbeat_age.clone(),
        );
        let moves = Gauge::default();
        registry.register("cluster_moves_in_progress", "Moves of residents this node takes part in", moves.clone());
        ClusterMetrics {
            live_nodes,
            heartbeat_age,
            moves,
            forwarded,
            forward_failures,
            takeovers,
            takeover_micros,
            copies_released,
            missed_leases,
            shipped_writes,
            shipped_snapshots,
            shipped_bytes,
            ship_micros,
            ship_failures,
            fenced_writes,
        }
    }

    fn update(&self, node: &crate::cluster::ClusterNode) {
        let events = &node.events;
        let read = |n: &AtomicU64| n.load(Ordering::Relaxed);
        self.forwarded.follow(read(&events.forwarded));
        self.forward_failures.follow(read(&events.forward_failures));
        self.takeovers.follow(read(&events.takeovers));
        self.takeover_micros.follow(read(&events.takeover_micros));
        self.copies_released.follow(read(&events.copies_released));
        self.missed_leases.follow(read(&events.missed_leases));
        let shipped = node.cluster.logs().shipped();
        self.shipped_writes.follow(shipped.writes);
        self.shipped_snapshots.follow(shipped.snapshots);
        self.shipped_bytes.follow(shipped.bytes);
        self.ship_micros.follow(shipped.micros);
        self.ship_failures.follow(shipped.failures);
        self.fenced_writes.follow(shipped.fenced);
        self.live_nodes.set(read(&events.live_nodes) as i64);
        let last_beat = read(&events.last_beat_ms);
        self.heartbeat_age.set(crate::cluster::now_ms().saturating_sub(last_beat) as f64 / 1000.0);
        self.moves.set(node.moves.lock().map_or(0, |m| m.len()) as i64);
    }
}

pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    run_seconds: Histogram,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histogram,
    denials: Followed,
    running: Gauge,
    residents: Gauge,
    cluster: Option<ClusterMetrics>,
}

impl Metrics {
    /// A node of a cluster (`clustered`) also counts its part in it.
    pub fn new(clustered: bool) -> Metrics {
        let mut registry = Registry::with_prefix("domicile");
        let runs = Family::<RunLabels, Counter>::default();
        registry.register("app_runs", "App invocations (runs and imports) by outcome", runs.clone());
        let run_seconds = Histogram::new(exponential_buckets(0.0005, 2.5, 14));
        registry.register("app_run_seconds", "Time an app invocation took, queueing included", run_seconds.clone());
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by status class", requests.clone());
        let request_seconds = Histogram::new(exponential_buckets(0.0001, 2.5, 16));
        registry.register("http_request_seconds", "Time to answer an HTTP request", request_seconds.clone());
        let denials = Followed::register(
            &mut registry,
            "denials",
            "Accesses refused to apps (missing grants, undeclared destinations)",
        );
        let running = Gauge::default();
        registry.register("app_invocations_running", "App invocations holding an instance slot now", running.clone());
        let residents = Gauge::default();
        registry.register("residents", "Residents of this home", residents.clone());
        let cluster = clustered.then(|| ClusterMetrics::register(&mut registry));
        Metrics { registry, runs, run_seconds, requests, request_seconds, denials, running, residents, cluster }
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

    fn encode(&self, state: &State) -> String {
        self.denials.follow(state.runtime.denials_total());
        if let (Some(metrics), Some(node)) = (&self.cluster, &state.cluster) {
            metrics.update(node);
        }
        self.running.set(state.runtime.running() as i64);
        if let Ok(residents) = state.home.store().residents() {
            self.residents.set(residents.len() as i64);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
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
