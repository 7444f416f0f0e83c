//! domicile over HTTP: one server for all the residents of a home.
//!
//! Residents use the JSON API under `/api/v1` (or the web UI at `/` built
//! on it): browse the catalogue, install with grants, run and import,
//! browse their documents, read the audit log, approve or deny what apps
//! want to send, export everything. Every such request is scoped to the one
//! resident who signed in ([`auth::Resident`]). The operator's token opens
//! `/api/v1/admin`: residents, quotas and usage figures, never a
//! resident's documents or audit log. `/healthz` and `/metrics`
//! (Prometheus text) carry no personal data.
//!
//! The server shares one [`Runtime`] (engine, instance pool) between all
//! residents; per-resident limits on concurrent work keep one resident
//! from taking every slot.

mod admin;
mod api;
mod auth;
mod cluster;
mod error;
mod imports;
mod metrics;
mod moves;
mod peers;
mod results;
mod scheduler;
mod settings;
mod ui;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use domicile_home::Home;
use domicile_host::Runtime;
use domicile_store::ResidentName;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_http::set_header::SetResponseHeaderLayer;

pub use error::ApiError;
pub use peers::PeerIdentity;

/// The operator's settings for the server (`[server]` in config.toml).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The largest request body (an uploaded export file).
    pub max_upload_bytes: usize,
    /// A request still running after this long is answered 408 and cancelled.
    pub request_timeout: Duration,
    /// Runs, imports, installs and exports one resident may have at once.
    pub runs_per_resident: usize,
    /// How long a browser stays signed in.
    pub session_ttl: Duration,
    /// After the shutdown signal, how long in-flight requests may take to
    /// finish before they are cancelled.
    pub shutdown_grace: Duration,
    /// Marks the session cookie `Secure` (only sent over HTTPS): for a
    /// server behind a TLS proxy. Off by default so http://127.0.0.1 works.
    pub secure_cookies: bool,
    /// Sign-in attempts one client address may make per minute (0: no cap).
    /// Behind a proxy every client has the proxy's address: raise it, or
    /// set 0 and let the proxy limit clients.
    pub sign_ins_per_client_per_minute: u32,
    /// How often the results of campaigns past their deadline are looked
    /// for, to bring into their participants' spaces.
    pub campaign_results_every: Duration,
    /// The cluster this node is part of (`serve --cluster`); none: a single node.
    pub cluster: Option<domicile_cluster::Cluster>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_upload_bytes: 64 * 1024 * 1024,
            request_timeout: Duration::from_secs(600),
            runs_per_resident: 2,
            session_ttl: Duration::from_secs(12 * 60 * 60),
            shutdown_grace: Duration::from_secs(30),
            secure_cookies: false,
            sign_ins_per_client_per_minute: 30,
            campaign_results_every: Duration::from_secs(300),
            cluster: None,
        }
    }
}

impl ServerConfig {
    /// `[server]` of a home's config.toml over the defaults.
    pub fn from_settings(settings: &domicile_home::ServerSettings) -> ServerConfig {
        let mut config = ServerConfig::default();
        let secs = Duration::from_secs;
        if let Some(mib) = settings.max_upload_mib {
            config.max_upload_bytes = usize::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        }
        config.request_timeout = settings.request_timeout_s.map_or(config.request_timeout, secs);
        config.runs_per_resident = settings.runs_per_resident.unwrap_or(config.runs_per_resident);
        config.session_ttl = settings.session_hours.map_or(config.session_ttl, |h| secs(h.saturating_mul(3600)));
        config.shutdown_grace = settings.shutdown_grace_s.map_or(config.shutdown_grace, secs);
        config.secure_cookies = settings.secure_cookies.unwrap_or(config.secure_cookies);
        config.sign_ins_per_client_per_minute =
            settings.sign_ins_per_client_per_minute.unwrap_or(config.sign_ins_per_client_per_minute);
        config.campaign_results_every =
            settings.campaign_results_every_s.map_or(config.campaign_results_every, |s| secs(s.max(1)));
        config
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Home(#[from] domicile_home::HomeError),
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot flush the store at shutdown: {0}")]
    Flush(#[from] domicile_store::StoreError),
    #[error("cannot copy this node's writes to the cluster: {0}")]
    Shipping(domicile_store::StoreError),
    #[error("{0}")]
    Peers(String),
}

/// A cluster node's listener for the other nodes (TLS, with its identity).
pub struct PeerPort {
    pub listener: tokio::net::TcpListener,
    pub identity: PeerIdentity,
}

/// Password checks (argon2) running at once, whatever the number of requests.
pub const PASSWORD_CHECKS: usize = 2;
/// How long a sign-in waits for a password check before a 429.
const PASSWORD_CHECK_WAIT: Duration = Duration::from_secs(3);

/// Everything a request handler may use.
pub struct State {
    pub(crate) home: Arc<Home>,
    /// The home's runtime, started before the first request.
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) config: ServerConfig,
    pub(crate) sessions: auth::Sessions,
    pub(crate) metrics: metrics::Metrics,
    /// Per resident: permits for heavy work (runs, imports, installs, exports).
    busy: Mutex<HashMap<ResidentName, Arc<Semaphore>>>,
    /// Password checks running at once. Each argon2 hash takes ~19 MiB and
    /// tens of milliseconds of a core; without a bound, hundreds of sign-ins
    /// with distinct names (which no per-name lockout slows) took the
    /// server to gigabytes.
    pub(crate) password_checks: Semaphore,
    /// Sign-in attempts per client address.
    pub(crate) clients: auth::ClientThrottle,
    /// This node's part in a cluster; none on a single node.
    pub(crate) cluster: Option<cluster::ClusterNode>,
    /// The imports under way, for the web UI to show their progress.
    pub(crate) imports: imports::Imports,
}

impl State {
    /// A permit for one heavy request of `resident`, or 429 when they
    /// already have as many running as the operator allows.
    pub(crate) fn heavy_work_permit(&self, resident: &ResidentName) -> Result<OwnedSemaphorePermit, ApiError> {
        let semaphore = self
            .busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(resident.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.runs_per_resident.max(1))))
            .clone();
        semaphore.try_acquire_owned().map_err(|_| {
            ApiError::TooMany(format!(
                "you already have {} runs, imports or installs in progress; wait for one to finish",
                self.config.runs_per_resident
            ))
        })
    }

    /// A permit to check one password: waits up to [`PASSWORD_CHECK_WAIT`]
    /// for one of the [`PASSWORD_CHECKS`], then answers 429 (with Retry-After).
    pub(crate) async fn password_check_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        match tokio::time::timeout(PASSWORD_CHECK_WAIT, self.password_checks.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::TooMany("too many sign-ins at once; try again in a few seconds".into())),
        }
    }
}

/// The whole HTTP surface: API, web UI, health and metrics.
pub fn router(home: Arc<Home>, config: ServerConfig) -> Result<(Router, Arc<State>), ServerError> {
    let runtime = home.runtime()?.clone();
    if let Some(cluster) = &config.cluster {
        // Every write of a resident's space is copied to their log in
        // JetStream before it is acknowledged.
        home.store().ship_to(cluster.logs().clone()).map_err(ServerError::Shipping)?;
    }
    home.accounts().prepare_sign_ins();
    let state = Arc::new(State {
        runtime,
        sessions: auth::Sessions::new(config.session_ttl, config.cluster.clone()),
        cluster: config.cluster.clone().map(cluster::ClusterNode::new),
        metrics: metrics::Metrics::new(),
        busy: Mutex::new(HashMap::new()),
        imports: imports::Imports::default(),
        password_checks: Semaphore::new(PASSWORD_CHECKS),
        clients: auth::ClientThrottle::new(config.sign_ins_per_client_per_minute),
        home,
        config,
    });
    let router = Router::new()
        .nest("/api/v1", api::routes().merge(admin::routes()))
        .merge(ui::routes())
        .merge(metrics::routes())
        .merge(cluster::routes())
        // JSON bodies (a document at most); an upload is read by its
        // handler, once the resident's allowance admitted it (`read_upload`).
        .layer(axum::extract::DefaultBodyLimit::max(JSON_BODY_MAX))
        // Refuses a body announced too large from its Content-Length, before reading it.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(state.config.max_upload_bytes))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            state.config.request_timeout,
        ))
        // Inside read_small_bodies: a sign-in's body is read once, then peeked at.
        .layer(axum::middleware::from_fn_with_state(state.clone(), cluster::route))
        .layer(axum::middleware::from_fn(read_small_bodies))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .with_state(state.clone());
    Ok((router, state))
}

/// The largest JSON body a route takes: a document and its envelope.
const JSON_BODY_MAX: usize = domicile_store::MAX_DOC_BYTES + 64 * 1024;

/// Reads an uploaded file (an export to import, an archive to restore)
/// whole, `max` bytes at most. Called by a handler only once the upload
/// was admitted (a resident's allowance of heavy work, the operator's
/// token): a body is never held in memory for a request that is refused.
pub(crate) async fn read_upload(request: Request, max: usize) -> Result<axum::body::Bytes, ApiError> {
    use http_body_util::BodyExt;
    let refused = || {
        ApiError::TooLarge(format!(
            "the file is larger than this server takes ({} MiB), or its upload broke off",
            max / (1024 * 1024)
        ))
    };
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // One buffer of the announced size: collecting the frames and joining
    // them would hold the file twice.
    let mut bytes = Vec::with_capacity(announced.unwrap_or(0).min(max));
    let mut body = request.into_body();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| refused())?.into_data() else { continue };
        if bytes.len() + data.len() > max {
            return Err(refused());
        }
        bytes.extend_from_slice(&data);
    }
    Ok(bytes.into())
}

/// Bodies this small are read before the handler runs.
pub(crate) const SMALL_BODY: usize = 64 * 1024;

/// Reads a small request body whole before the handler runs, whether the
/// handler reads it or not (`POST .../enable` with `{}`). A body left
/// unread makes the HTTP server close the connection after answering, and
/// a client that sends its next request on that kept-alive connection sees
/// it reset. Uploads (larger, or of unknown length) stream to the handler.
async fn read_small_bodies(request: Request, next: Next) -> Response {
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if !length.is_some_and(|n| n > 0 && n <= SMALL_BODY) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, SMALL_BODY).await {
        Ok(bytes) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Err(_) => axum::response::IntoResponse::into_response(ApiError::BadRequest(
            "the request's body could not be read whole".into(),
        )),
    }
}

/// Logs and counts every request by its route pattern: never its path or
/// query, which can hold a resident's data (a selector, a doctype).
async fn observe(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.request(status, elapsed);
    tracing::info!(
        %method,
        route = route.as_deref().unwrap_or("(unmatched)"),
        status,
        ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// Serves until `shutdown` completes, then stops taking connections, gives
/// in-flight requests `shutdown_grace` to finish (then cancels them: an
/// import cancelled midway commits nothing), and flushes the store.
pub async fn serve(
    home: Arc<Home>,
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    peer_port: Option<PeerPort>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let grace = config.shutdown_grace;
    let (router, state) = router(home, config)?;
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    // The other nodes' requests: the same routes, marked as come through
    // the peer port (where only a node's request is taken).
    let peers = match peer_port {
        Some(PeerPort { listener, identity }) => {
            let listener = peers::PeerListener::new(listener, &identity)?;
            let routes = router.clone().layer(axum::middleware::from_fn(peers::mark));
            let mut stopping = stopping_rx.clone();
            let served = axum::serve(listener, routes.into_make_service_with_connect_info::<peers::PeerAddr>())
                .with_graceful_shutdown(async move {
                    let _ = stopping.wait_for(|stopping| *stopping).await;
                });
            Some(tokio::spawn(async move { served.await }))
        }
        None => None,
    };
    cluster::learn_recent_from_peers(&state).await;
    if let Err(e) = settings::use_cluster_attester(&state).await {
        tracing::error!(error = %e, "cannot take the cluster's campaign attester");
    }
    let triggers = tokio::spawn(scheduler::run(state.clone(), stopping_rx.clone()));
    let heartbeats = tokio::spawn(cluster::run(state.clone(), stopping_rx.clone()));
    let moves = tokio::spawn(moves::run(state.clone(), stopping_rx.clone()));
    let settings = tokio::spawn(settings::run(state.clone(), stopping_rx.clone()));
    let results = tokio::spawn(results::run(state.clone(), stopping_rx.clone()));
    return_freed_memory_to_the_system();
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections; waiting for requests in flight");
            let _ = stopping_tx.send(true);
        });
    let deadline = async move {
        let _ = stopping_rx.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = server => served?,
        () = deadline => tracing::warn!(grace_s = grace.as_secs(), "requests still running after the grace period were cancelled"),
    }
    triggers.abort();
    moves.abort();
    settings.abort();
    results.abort();
    if let Some(peers) = peers {
        peers.abort();
    }
    // It leaves the cluster once it sees the server stopping.
    let _ = tokio::time::timeout(Duration::from_secs(5), heartbeats).await;
    state.home.store().flush()?;
    tracing::info!("stopped; the store is flushed");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Makes glibc give large freed blocks back to the system at once. By
/// default it raises its mmap threshold as large blocks are freed, so the
/// ~19 MiB of each argon2 hash then comes from its heaps, whose free memory
/// stays with the process: after a storm of sign-ins the server kept
/// hundreds of MiB. A fixed threshold keeps such blocks mapped and unmapped.
#[allow(unsafe_code)]
fn return_freed_memory_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before the server's threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
