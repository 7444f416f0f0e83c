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

pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    run_seconds: Histogram,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histogram,
    denials: Counter,
    denials_seen: AtomicU64,
    running: Gauge,
    residents: Gauge,
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
        let denials = Counter::default();
        registry.register(
            "denials",
            "Accesses refused to apps (missing grants, undeclared destinations)",
            denials.clone(),
        );
        let running = Gauge::default();
        registry.register("app_invocations_running", "App invocations holding an instance slot now", running.clone());
        let residents = Gauge::default();
        registry.register("residents", "Residents of this home", residents.clone());
        Metrics {
            registry,
            runs,
            run_seconds,
            requests,
            request_seconds,
            denials,
            denials_seen: AtomicU64::new(0),
            running,
            residents,
        }
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
        // The counter follows the runtime's total: each scrape adds what no
        // scrape added yet (fetch_max, so concurrent scrapes never add twice).
        let total = state.runtime.denials_total();
        let seen = self.denials_seen.fetch_max(total, Ordering::Relaxed);
        self.denials.inc_by(total.saturating_sub(seen));
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
