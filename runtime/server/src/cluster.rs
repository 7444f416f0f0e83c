//! Cluster mode (`serve --cluster`): this node is one of several sharing
//! NATS JetStream ([`domicile_cluster`]). Each resident's space lives on
//! the one node that holds them; any node answers any resident by
//! forwarding the request, streamed both ways, to that node.
//!
//! A node finds whose request it is from the request itself: the session
//! cookie (sessions are shared), the API token (tokens are indexed by
//! their SHA-256), the name in a sign-in, or the resident an operator's
//! request names. Authentication stays with the node that holds the
//! resident: a forwarded request is checked there like any other, and a
//! node serves a resident only while the cluster says it holds them.
//! Requests go from node to node over TLS, to the certificate the other
//! node's sealed heartbeat names, on a port for nodes only ([`crate::peers`]);
//! a forwarded request carries the cluster's node secret there. The
//! forwarding headers of any other request are a client's, and are dropped.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domicile_cluster::{Cluster, NodeName, Placement};
use domicile_store::ResidentName;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::auth::{bearer, cookie, SESSION_COOKIE};
use crate::error::ApiError;
use crate::peers::{PeerAddress, PeerConnector, ViaPeerPort};
use crate::State;

/// Set on a request a node forwards: the node receiving it serves it or
/// refuses it, and never forwards it again (no loops between nodes that
/// disagree for a moment on who holds a resident).
pub const FORWARDED_BY: &str = "x-domicile-forwarded-by";
/// The cluster's node secret, proving that a node forwarded the request:
/// without it, the forwarding headers are a client's and are dropped.
const NODE_SECRET: &str = "x-domicile-node-secret";
/// The address of the client the forwarding node answered (its sign-in
/// attempts are counted per address), trusted only with the secret.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// Hop-by-hop headers (RFC 9110, 7.6.1): they concern one connection and
/// are not passed on.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// This node's part in the cluster: its handle on the shared state, and
/// the HTTP client it forwards with.
pub struct ClusterNode {
    pub(crate) cluster: Cluster,
    client: Client<PeerConnector, Body>,
    peers: PeerConnector,
    /// The live nodes at the last look for residents to take over.
    live_at_last_look: std::sync::Mutex<Option<BTreeSet<NodeName>>>,
    /// The revision of the cluster's trust store this node's copy is.
    pub(crate) trust_revision: std::sync::Mutex<Option<u64>>,
    /// The moves this node takes part in, by resident: its part, and when
    /// the move was requested (which move it is).
    pub(crate) moves: std::sync::Mutex<std::collections::HashMap<ResidentName, (crate::moves::Moving, u64)>>,
    /// What happened on this node since it started, for `/metrics`.
    pub(crate) events: NodeEvents,
}

/// Counts of what this node did in the cluster since it started, and
/// what it saw at its last heartbeat.
#[derive(Debug, Default)]
pub(crate) struct NodeEvents {
    pub(crate) forwarded: AtomicU64,
    /// Requests on the peer port that no node sent (no or a wrong secret).
    pub(crate) peer_refusals: AtomicU64,
    pub(crate) forward_failures: AtomicU64,
    pub(crate) takeovers: AtomicU64,
    pub(crate) takeover_micros: AtomicU64,
    pub(crate) copies_released: AtomicU64,
    pub(crate) missed_leases: AtomicU64,
    pub(crate) live_nodes: AtomicU64,
    /// When this node's last heartbeat went through (ms since the epoch).
    pub(crate) last_beat_ms: AtomicU64,
}

fn count(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl ClusterNode {
    pub fn new(cluster: Cluster) -> ClusterNode {
        let peers = PeerConnector::default();
        ClusterNode {
            cluster,
            client: Client::builder(TokioExecutor::new()).build(peers.clone()),
            peers,
            live_at_last_look: Default::default(),
            moves: Default::default(),
            trust_revision: Default::default(),
            events: Default::default(),
        }
    }

    pub fn me(&self) -> &NodeName {
        self.cluster.node()
    }

    /// Makes the next heartbeat look at the placements again, whether or
    /// not the live nodes changed.
    fn look_again(&self) {
        *self.live_at_last_look.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The output of `next`, or `None` once the server is stopping.
pub(crate) async fn unless_stopping<T>(
    stopping: &mut tokio::sync::watch::Receiver<bool>,
    next: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        value = next => Some(value),
        _ = stopping.wait_for(|stopping| *stopping) => None,
    }
}

/// Fails unless this node holds `resident` now: a node that lost a
/// resident (stopped past its lease, moved away) never serves or writes them.
/// Returns the placement (none on a single node), whose revision a later
/// change of it must match.
pub(crate) async fn check_holds(state: &State, resident: &ResidentName) -> Result<Option<Placement>, ApiError> {
    check_holds_read(state, resident, None).await
}

/// [`check_holds`], with the placement the routing of this request read
/// (`read`), if it read the resident's.
pub(crate) async fn check_holds_read(
    state: &State,
    resident: &ResidentName,
    read: Option<&HolderRead>,
) -> Result<Option<Placement>, ApiError> {
    let Some(node) = &state.cluster else { return Ok(None) };
    if let Some(crate::moves::Moving::Out { to }) = node.moving(resident) {
        return Err(ApiError::Unavailable(format!(
            "resident `{resident}` is being moved to node `{to}`; try again in a moment"
        )));
    }
    let holder = match read {
        Some(HolderRead(held)) if &held.resident == resident => Some(held.clone()),
        _ => node.cluster.holder(resident).await?,
    };
    match holder {
        // Placed here, its space not yet here: this node is taking them
        // over and rebuilding it.
        Some(held) if &held.node == node.me() && !state.home.store().has_resident(resident) => {
            Err(ApiError::Unavailable(format!(
                "this node is taking resident `{resident}` over and rebuilding their space; try again in a moment"
            )))
        }
        Some(held) if &held.node == node.me() => Ok(Some(held)),
        Some(held) => Err(ApiError::Unavailable(format!(
            "this node does not hold resident `{resident}` (node `{}` does); ask any node again",
            held.node
        ))),
        None => Err(ApiError::NotFound(format!("no node of the cluster holds resident `{resident}`"))),
    }
}

/// Whether a node of the cluster forwarded this request: it came in on
/// the peer port and carries the node secret (compared in constant time).
fn from_a_node(node: &ClusterNode, request: &Request) -> bool {
    let Some(sent) = request.headers().get(NODE_SECRET) else { return false };
    request.extensions().get::<ViaPeerPort>().is_some()
        && request.headers().contains_key(FORWARDED_BY)
        && domicile_cluster::same_secret(sent.as_bytes(), node.cluster.node_secret().as_bytes())
}

/// Marks a request a node of the cluster sent ([`from_a_node`]).
#[derive(Clone, Copy)]
pub(crate) struct FromNode;

/// The routes the cluster's nodes serve one another.
pub(crate) fn routes() -> axum::Router<Arc<State>> {
    axum::Router::new().route(RECENT_MEMORY, axum::routing::get(recent_memory))
}

/// Where a node tells another what it remembers of the buckets' recent changes.
const RECENT_MEMORY: &str = "/cluster/recent";
/// How long a node that starts waits for each other node's memory.
const RECENT_MEMORY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What this node remembers of the cluster's recent changes, for a node
/// that starts ([`learn_recent_from_peers`]); to the cluster's nodes only.
async fn recent_memory(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    from: Option<axum::Extension<FromNode>>,
) -> Result<axum::Json<domicile_cluster::RecentMemory>, ApiError> {
    match (&state.cluster, from) {
        (Some(node), Some(_)) => Ok(axum::Json(node.cluster.recent_memory())),
        _ => Err(ApiError::Forbidden("this is for the cluster's nodes only".into())),
    }
}

/// Before it serves anyone, a node that starts learns from every other
/// live node what they remember of the buckets' recent changes (over
/// the nodes' own channel, which NATS cannot answer for them): a session
/// signed out, or a password changed, while it was stopped or before its
/// home was lost, then cannot be put back to it within the replay window.
/// A node that does not answer in time is passed over (logged): the
/// others' memory, and this node's own, still hold.
pub(crate) async fn learn_recent_from_peers(state: &Arc<State>) {
    let Some(node) = &state.cluster else { return };
    let others: Vec<NodeName> = match node.cluster.live_nodes().await {
        Ok(live) => live.into_iter().map(|(name, _)| name).filter(|name| name != node.me()).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the live nodes to learn their recent changes");
            return;
        }
    };
    let mut asking = tokio::task::JoinSet::new();
    for other in others {
        let state = state.clone();
        asking.spawn(async move {
            let answer = tokio::time::timeout(RECENT_MEMORY_WAIT, ask_recent_memory(&state, &other)).await;
            (other, answer.unwrap_or_else(|_| Err(format!("no answer within {} s", RECENT_MEMORY_WAIT.as_secs()))))
        });
    }
    while let Some(asked) = asking.join_next().await {
        match asked {
            Ok((other, Ok(memory))) => {
                let keys = memory.keys();
                let taught = node.cluster.learn_recent(memory);
                tracing::info!(node = %other, keys, taught, "learnt the recent changes another node saw");
            }
            Ok((other, Err(e))) => {
                tracing::warn!(node = %other, error = %e, "cannot learn the recent changes another node saw")
            }
            Err(e) => tracing::warn!(error = %e, "asking another node for its recent changes"),
        }
    }
}

/// What node `other` remembers of the buckets' recent changes.
async fn ask_recent_memory(state: &State, other: &NodeName) -> Result<domicile_cluster::RecentMemory, String> {
    let node = state.cluster.as_ref().ok_or("not in a cluster")?;
    let request = Request::get(RECENT_MEMORY).body(Body::empty()).map_err(|e| e.to_string())?;
    let answer = forward(node, other, request).await.map_err(|e| e.to_string())?;
    let status = answer.status();
    let body = axum::body::to_bytes(answer.into_body(), 64 * 1024 * 1024).await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("answered {status}: {}", String::from_utf8_lossy(&body)));
    }
    serde_json::from_slice(&body).map_err(|e| format!("answered no memory: {e}"))
}

/// What a request is about, for routing.
enum Target {
    /// Not about one resident (health, metrics, the UI's files, lists).
    Here,
    Resident(ResidentName),
    /// An operator's new resident: the node chosen for them.
    NewResident(NodeName),
}

/// The routing middleware: serves here what this node holds or what is
/// about no resident, forwards the rest to the node that holds it.
pub(crate) async fn route(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(node) = &state.cluster else { return next.run(request).await };
    if from_a_node(node, &request) {
        // Served here, never forwarded again; the handlers check that this
        // node holds the resident. Sign-ins are counted per real client.
        request.extensions_mut().insert(FromNode);
        let client =
            request.headers().get(FORWARDED_FOR).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
        if let Some(ip) = client {
            request.extensions_mut().insert(ConnectInfo(SocketAddr::new(ip, 0)));
        }
        return next.run(request).await;
    }
    if request.extensions().get::<ViaPeerPort>().is_some() {
        node.events.peer_refusals.fetch_add(1, Ordering::Relaxed);
        return ApiError::Forbidden(
            "this port takes requests forwarded by the cluster's nodes only; residents and the operator use the server's address".into(),
        )
        .into_response();
    }
    for name in [FORWARDED_BY, NODE_SECRET, FORWARDED_FOR] {
        request.headers_mut().remove(name);
    }
    let (mut request, target) = match target(&state, node, request).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let destination = match target {
        Target::Here => return next.run(request).await,
        Target::NewResident(chosen) => chosen,
        Target::Resident(resident) => match node.cluster.holder(&resident).await {
            Ok(Some(held)) if &held.node == node.me() => {
                // The handler checks the same placement, read just now.
                request.extensions_mut().insert(HolderRead(held));
                return next.run(request).await;
            }
            Ok(Some(held)) => held.node,
            // Unknown here and everywhere: the handler says so.
            Ok(None) => return next.run(request).await,
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    if &destination == node.me() {
        return next.run(request).await;
    }
    let forwarded = forward(node, &destination, request).await;
    count(if forwarded.is_ok() { &node.events.forwarded } else { &node.events.forward_failures }, 1);
    forwarded.unwrap_or_else(IntoResponse::into_response)
}

async fn target(state: &State, node: &ClusterNode, request: Request) -> Result<(Request, Target), ApiError> {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let path = request.uri().path().to_owned();
    if let Some(rest) = route.strip_prefix("/api/v1/admin/") {
        return Ok(match rest {
            "residents" if request.method() == Method::POST => {
                let (request, body) = peek_json(request).await?;
                let preferred = match body.get("node").and_then(|n| n.as_str()) {
                    Some(name) => Some(name.parse::<NodeName>().map_err(|e| ApiError::BadRequest(e.to_string()))?),
                    None => None,
                };
                let chosen = node.cluster.choose_node(preferred.as_ref()).await?;
                (request, Target::NewResident(chosen))
            }
            _ if rest.starts_with("residents/{name}") => {
                let name = path.trim_start_matches("/api/v1/admin/residents/").split('/').next().unwrap_or_default();
                let resident = name.parse().map_err(|e| ApiError::BadRequest(format!("{e}")))?;
                (request, Target::Resident(resident))
            }
            _ => (request, Target::Here),
        });
    }
    if !route.starts_with("/api/v1/") {
        return Ok((request, Target::Here));
    }
    if route == "/api/v1/session" && request.method() == Method::POST {
        let (request, body) = peek_json(request).await?;
        // A name that is no resident's is answered here: wrong credentials.
        return Ok(match body.get("name").and_then(|n| n.as_str()).and_then(|n| n.parse().ok()) {
            Some(resident) => (request, Target::Resident(resident)),
            None => (request, Target::Here),
        });
    }
    let mut request = request;
    let resident = if let Some(token) = bearer(request.headers()) {
        node.cluster.token_owner(&domicile_home::sha256_hex(token)).await?
    } else if let Some(cookie) = cookie(request.headers(), SESSION_COOKIE) {
        let session = state.sessions.get(cookie).await?;
        let resident = session.as_ref().map(|(resident, _)| resident.clone());
        // Served here, the handler takes the session read just now.
        request.extensions_mut().insert(SessionRead(session));
        resident
    } else {
        None
    };
    // Without credentials the request is refused here, as on any node.
    Ok((request, resident.map_or(Target::Here, Target::Resident)))
}

// What the routing read from the cluster's state for a request it serves
// here, kept in the request so that its handler does not read it again:
// the same values, a moment old, within the same request.

/// The session of the request's cookie (none: no such session).
#[derive(Clone, Debug)]
pub(crate) struct SessionRead(pub(crate) Option<(ResidentName, String)>);

/// The placement of the request's resident, on this node.
#[derive(Clone, Debug)]
pub(crate) struct HolderRead(Placement);

/// The request's small JSON body, read, and the request rebuilt with it.
async fn peek_json(request: Request) -> Result<(Request, serde_json::Value), ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, crate::SMALL_BODY)
        .await
        .map_err(|_| ApiError::BadRequest("the request's body is too large or unreadable".into()))?;
    let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok((Request::from_parts(parts, Body::from(bytes)), value))
}

/// The residents the cluster places on this node.
pub(crate) async fn held_here(node: &ClusterNode) -> Result<BTreeSet<ResidentName>, ApiError> {
    let placements = node.cluster.placements().await?;
    Ok(placements.into_iter().filter(|p| &p.node == node.me()).map(|p| p.resident).collect())
}

/// GETs `path` (a JSON array) from every other live node, as a node asks
/// (served there, never forwarded on), with the credentials of `headers`;
/// the arrays' items, together.
pub(crate) async fn ask_every_other_node(
    node: &ClusterNode,
    headers: &axum::http::HeaderMap,
    path: &str,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let mut items = Vec::new();
    for (other, _) in node.cluster.live_nodes().await? {
        if &other == node.me() {
            continue;
        }
        let mut request = Request::get(path).body(Body::empty()).map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Some(credentials) = headers.get(header::AUTHORIZATION) {
            request.headers_mut().insert(header::AUTHORIZATION, credentials.clone());
        }
        let answer = forward(node, &other, request).await?;
        let status = answer.status();
        let body = axum::body::to_bytes(answer.into_body(), 64 * 1024 * 1024)
            .await
            .map_err(|e| ApiError::Unavailable(format!("node `{other}` did not answer whole: {e}")))?;
        if !status.is_success() {
            return Err(ApiError::Unavailable(format!(
                "node `{other}` answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        match serde_json::from_slice(&body) {
            Ok(serde_json::Value::Array(answered)) => items.extend(answered),
            _ => return Err(ApiError::Internal(format!("node `{other}` answered something that is not a list"))),
        }
    }
    Ok(items)
}

/// Sends the request to `destination` and its answer back, both streamed.
async fn forward(node: &ClusterNode, destination: &NodeName, request: Request) -> Result<Response, ApiError> {
    let unreachable = |detail: String| {
        ApiError::Unavailable(format!("node `{destination}`, which holds this resident, cannot be reached ({detail})"))
    };
    let record = node.cluster.live_node(destination).await.map_err(|e| unreachable(e.to_string()))?;
    let certificate_sha256 =
        record.peer_certificate().ok_or_else(|| unreachable("its heartbeat names no certificate".into()))?;
    node.peers.learn(destination.as_str(), PeerAddress { address: record.peer.clone(), certificate_sha256 });
    let (mut parts, body) = request.into_parts();
    let client = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // The host is the node's name: the connector finds where it is.
    parts.uri = format!("https://{destination}{path}")
        .parse::<Uri>()
        .map_err(|e| unreachable(format!("its name as a host: {e}")))?;
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::HOST);
    let header = |value: &str| HeaderValue::from_str(value).expect("node names, hex and addresses are ASCII");
    parts.headers.insert(HeaderName::from_static(FORWARDED_BY), header(node.me().as_str()));
    parts.headers.insert(HeaderName::from_static(NODE_SECRET), header(node.cluster.node_secret()));
    if let Some(ip) = client {
        parts.headers.insert(HeaderName::from_static(FORWARDED_FOR), header(&ip.to_string()));
    }
    let response =
        node.client.request(Request::from_parts(parts, body)).await.map_err(|e| unreachable(e.to_string()))?;
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, Body::new(body)))
}

fn strip_hop_by_hop(headers: &mut axum::http::HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Joins this node's residents to the cluster, then heartbeats until the
/// server stops: claims each local resident no node holds (and leaves to
/// their holder those another node holds), indexes their API tokens, and
/// shares the operator's token if the cluster has none yet. Whenever the
/// live nodes change, or this node finds it may have lost residents (it
/// missed its lease, a write of its was fenced off), it brings itself in
/// line with the placements ([`follow_placements`]).
pub(crate) async fn run(state: Arc<State>, mut stopping: tokio::sync::watch::Receiver<bool>) {
    let Some(node) = &state.cluster else { return };
    let lease = node.cluster.options().lease;
    if let Err(e) = node.cluster.heartbeat(0).await {
        tracing::error!(error = %e, "first heartbeat");
    }
    let mut last_beat = std::time::Instant::now();
    // Since when this node's heartbeats have gone through without a gap.
    let mut beating_since = Some(last_beat);
    if let Err(e) = claim_local_residents(&state, node).await {
        tracing::error!(error = %e, "taking this node's residents into the cluster");
    }
    loop {
        // What placement weighs: the residents on this node's disk.
        let held = state.home.store().residents().map_or(0, |r| r.len() as u64);
        match node.cluster.heartbeat(held).await {
            Ok(()) => {
                if last_beat.elapsed() >= lease {
                    // Stopped, or cut off from NATS, past the lease: the
                    // other nodes may have taken this one's residents.
                    tracing::warn!(ms = last_beat.elapsed().as_millis() as u64, "this node missed its lease");
                    node.look_again();
                    beating_since = None;
                    count(&node.events.missed_leases, 1);
                }
                last_beat = std::time::Instant::now();
                node.events.last_beat_ms.store(domicile_cluster::now_ms(), Ordering::Relaxed);
                beating_since.get_or_insert(last_beat);
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat");
                beating_since = None;
            }
        }
        if node.cluster.logs().was_fenced() {
            node.look_again();
        }
        for resident in node.cluster.logs().take_tampered() {
            tracing::warn!(%resident, "the resident's log was cut back and put back in NATS: shipping a snapshot of this node's copy, from which a rebuild starts again");
            if let Err(e) = ship_snapshot(&state, &resident).await {
                tracing::warn!(%resident, error = %e, "cannot ship a snapshot over a log that was tampered with");
            }
        }
        // A node judges others gone only after a whole lease of its own
        // heartbeats: when NATS restarts, or the network parts for a while,
        // every node misses its heartbeats, and the first back must not
        // take over the residents of the others, about to be back too.
        let may_take_over = beating_since.is_some_and(|since| since.elapsed() >= lease);
        if let Err(e) = follow_placements(&state, node, may_take_over).await {
            tracing::warn!(error = %e, "following the cluster's placements");
            node.look_again();
        }
        if unless_stopping(&mut stopping, tokio::time::sleep(lease / 3)).await.is_none() {
            break;
        }
    }
    if let Err(e) = node.cluster.leave().await {
        tracing::warn!(error = %e, "leaving the cluster");
    }
}

async fn claim_local_residents(state: &Arc<State>, node: &ClusterNode) -> Result<(), ApiError> {
    let accounts = state.home.accounts();
    node.cluster.settle_operator_token(accounts.operator_token_sha256().as_deref()).await?;
    node.cluster.logs().learn_objects().await;
    for resident in state.home.store().residents()? {
        let held = match node.cluster.holder(&resident).await? {
            Some(held) => held,
            None => match node.cluster.place(&resident, node.me()).await {
                Ok(held) => held,
                Err(domicile_cluster::ClusterError::Taken { holder, .. }) => {
                    tracing::warn!(%resident, %holder, "another node took this resident first; this node will not serve them");
                    continue;
                }
                Err(e) => return Err(e.into()),
            },
        };
        if &held.node != node.me() {
            tracing::warn!(%resident, holder = %held.node, "held by another node; this node will not serve them");
            if let Err(e) = release_if_stale(state, node, &resident).await {
                tracing::warn!(%resident, error = %e, "cannot drop this node's copy of a resident another node holds");
            }
            continue;
        }
        if let Err(e) = attach(state, node, &resident).await {
            tracing::error!(%resident, error = %e, "cannot bring this resident's space up to date with their log");
        }
    }
    Ok(())
}

/// Makes this node the writer of the log of `resident` (placed here), its
/// copy of their space being the state the log ends with: a space never
/// shipped is shipped whole; a copy behind the log (another node wrote
/// since) is rebuilt from the log. Their account and API tokens are then
/// known to the cluster.
pub(crate) async fn attach(state: &State, node: &ClusterNode, resident: &ResidentName) -> Result<(), ApiError> {
    let logs = node.cluster.logs();
    let last = logs.last_position(resident).await?;
    let store = state.home.store().clone();
    let local = match store.has_resident(resident) {
        true => {
            let (store, resident) = (store.clone(), resident.clone());
            Some(tokio::task::spawn_blocking(move || store.resident(&resident)?.shipped_through()).await??)
        }
        false => None,
    };
    // A log whose last message this node wrote before messages were
    // sealed, or before their contents were encrypted, starts again from
    // a snapshot of this node's copy (which purges what came before).
    let current = last == 0 || local != Some(last) || logs.current_at(resident, last).await?;
    match local {
        Some(_) if last == 0 || !current => {
            logs.write_from(resident, last);
            ship_snapshot(state, resident).await?;
        }
        Some(local) if local == last => logs.write_from(resident, last),
        _ => {
            if rebuild(state, node, resident).await?.in_clear {
                ship_snapshot(state, resident).await?;
            }
        }
    }
    keep_account(state, node, resident).await?;
    index_tokens(state, node, resident).await
}

/// Records the resident of each of their API tokens in the cluster, so
/// that any node forwards a script's request here.
async fn index_tokens(state: &State, node: &ClusterNode, resident: &ResidentName) -> Result<(), ApiError> {
    for token in state.home.accounts().token_sha256s(resident) {
        node.cluster.index_token(&token, resident).await?;
    }
    Ok(())
}

/// Rebuilds `resident`'s space on this node from their log (replacing any
/// copy it has), takes their account from the cluster, and writes their
/// log from then on; returns the log's position it is rebuilt through.
pub(crate) async fn rebuild(state: &State, node: &ClusterNode, resident: &ResidentName) -> Result<Rebuilt, ApiError> {
    bring_up_to_date(state, node, resident, 0).await
}

/// Brings this node's copy of `resident`, made from their log through
/// `position` (0: none), up to the end of the log: the writes since are
/// applied to it, or, from the log's last snapshot when one came since, it
/// is rebuilt. Their account is taken from the cluster, and this node
/// writes their log from then on. Returns the log's end, and whether it
/// was written in clear: the caller, once it holds them, ships a snapshot.
pub(crate) async fn bring_up_to_date(
    state: &State,
    node: &ClusterNode,
    resident: &ResidentName,
    position: u64,
) -> Result<Rebuilt, ApiError> {
    let logs = node.cluster.logs();
    let (whole, tail) = logs.read_after(resident, position).await?;
    if !whole && position == 0 {
        return Err(ApiError::Internal(format!(
            "the cluster has no copy of resident `{resident}`'s space to rebuild it from"
        )));
    }
    let (home, name) = (state.home.clone(), resident.clone());
    let set_aside = tokio::task::spawn_blocking(move || match home.store().has_resident(&name) {
        // A copy never shipped is not theirs but a homonym this node's
        // home had before it joined: kept as an archive, not overwritten.
        true if whole && home.store().resident(&name)?.shipped_through()? == 0 => home.set_aside(&name).map(Some),
        _ => Ok(None),
    })
    .await??;
    if let Some(path) = set_aside {
        tracing::warn!(%resident, archive = %path.display(), "this node's own resident of the same name was set aside as an archive; restore it under another name");
    }
    if let Some(account) = node.cluster.account(resident).await? {
        state.home.accounts().adopt_account_record(resident, &account)?;
    }
    let (store, name, through) = (state.home.store().clone(), resident.clone(), tail.through);
    tokio::task::spawn_blocking(move || match whole {
        true => store.rebuild(&name, &tail.snapshot, tail.records, tail.through).map(drop),
        false => store.catch_up(&name, tail.records, tail.through),
    })
    .await??;
    logs.write_from(resident, through);
    Ok(Rebuilt { through, in_clear: tail.in_clear })
}

/// What [`bring_up_to_date`] read: the log's end, and whether some of it
/// was content the previous version wrote in clear.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rebuilt {
    pub(crate) through: u64,
    pub(crate) in_clear: bool,
}

/// Ships a snapshot of `resident`, whom this node holds, to their log:
/// it purges what came before, so a log the previous version wrote in
/// clear (or unsealed) holds only encrypted content from then on.
pub(crate) async fn ship_snapshot(state: &State, resident: &ResidentName) -> Result<(), ApiError> {
    let (store, name) = (state.home.store().clone(), resident.clone());
    tokio::task::spawn_blocking(move || store.resident(&name)?.ship_snapshot()).await??;
    Ok(())
}

/// Brings this node in line with the placements, when the live nodes
/// changed since its last look or it was asked to look again:
/// - the residents on its disk that another node holds now: it stops
///   writing them and drops its stale copies ([`release_if_stale`]);
/// - the residents of a node that stopped heartbeating: it takes them
///   over, by one compare-and-set on each placement (of the surviving
///   nodes trying, one wins), a claim in the resident's log (after which
///   the lost node can no longer write it), and a rebuild of the space
///   from the log. A take-over that stopped half-way (placed here, the
///   space not rebuilt) is finished. Only when `may_take_over` (see
///   [`run`]); else it looks again at the next heartbeat.
async fn follow_placements(state: &Arc<State>, node: &ClusterNode, may_take_over: bool) -> Result<(), ApiError> {
    let live: BTreeSet<NodeName> = node.cluster.live_nodes().await?.into_iter().map(|(n, _)| n).collect();
    node.events.live_nodes.store(live.len() as u64, Ordering::Relaxed);
    {
        let mut last = node.live_at_last_look.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_ref() == Some(&live) {
            return Ok(());
        }
        *last = Some(live.clone());
    }
    let placements = node.cluster.placements().await?;
    let mut settled = true;
    // Only the copies of residents placed elsewhere need a closer look.
    let held_elsewhere: BTreeSet<&ResidentName> =
        placements.iter().filter(|p| &p.node != node.me()).map(|p| &p.resident).collect();
    for resident in state.home.store().residents()?.iter().filter(|r| held_elsewhere.contains(r)) {
        if let Err(e) = release_if_stale(state, node, resident).await {
            tracing::warn!(%resident, error = %e, "cannot drop this node's copy of a resident another node holds");
            settled = false;
        }
    }
    if !may_take_over {
        node.look_again();
        return Ok(());
    }
    for held in placements {
        let resident = &held.resident;
        if &held.node == node.me() {
            if state.home.store().has_resident(resident) {
                continue;
            }
        } else if live.contains(&held.node) {
            continue;
        } else {
            match node.cluster.take_over(&held).await {
                Ok(_) => {}
                Err(domicile_cluster::ClusterError::Moved { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let started = std::time::Instant::now();
        node.cluster.logs().claim(resident).await?;
        if rebuild(state, node, resident).await?.in_clear {
            ship_snapshot(state, resident).await?;
        }
        index_tokens(state, node, resident).await?;
        count(&node.events.takeovers, 1);
        count(&node.events.takeover_micros, started.elapsed().as_micros() as u64);
        tracing::warn!(
            %resident,
            from = %held.node,
            ms = started.elapsed().as_millis() as u64,
            "took over a resident of a node that stopped heartbeating"
        );
    }
    if !settled {
        node.look_again();
    }
    Ok(())
}

/// Drops this node's copy of `resident` when another node holds them and
/// has written their log since the copy's last write (at least its claim):
/// everything acknowledged in the copy is in the log the other node
/// rebuilt them from. Until then the copy is kept, and never served or
/// written. A copy never shipped to the cluster (a resident of this node's
/// home from before it joined, whose name another node's resident had
/// first) is not theirs, and is kept too.
pub(crate) async fn release_if_stale(
    state: &Arc<State>,
    node: &ClusterNode,
    resident: &ResidentName,
) -> Result<(), ApiError> {
    // A copy moving here is not stale: it is being built.
    if matches!(node.moving(resident), Some(crate::moves::Moving::In)) || !state.home.store().has_resident(resident) {
        return Ok(());
    }
    let Some(held) = node.cluster.holder(resident).await? else { return Ok(()) };
    if &held.node == node.me() {
        return Ok(());
    }
    let logs = node.cluster.logs();
    logs.stop_writing(resident);
    let (store, name) = (state.home.store().clone(), resident.clone());
    let local = tokio::task::spawn_blocking(move || store.resident(&name)?.shipped_through()).await??;
    if local == 0 || logs.last_position(resident).await? <= local {
        return Ok(());
    }
    let (worker, name) = (state.clone(), resident.clone());
    tokio::task::spawn_blocking(move || worker.home.remove_resident(&name)).await??;
    count(&node.events.copies_released, 1);
    tracing::warn!(%resident, holder = %held.node, "dropped this node's stale copy of a resident another node took over");
    Ok(())
}

/// A change of a resident's account (a password, a token, sign-in
/// switched off or on), made on this node and then copied to the cluster
/// before it is acknowledged, so that a node taking them over signs them
/// in as this one does. When the cluster does not take the copy, the
/// change is undone here too: the client's 503 means it was not made.
pub(crate) struct AccountChange {
    resident: ResidentName,
    before: Option<Vec<u8>>,
}

impl AccountChange {
    /// Call before changing the account.
    pub(crate) fn begin(state: &State, resident: &ResidentName) -> AccountChange {
        AccountChange { resident: resident.clone(), before: state.home.accounts().account_record(resident) }
    }

    /// Call once the account is changed; does nothing on a single node.
    pub(crate) async fn copy_to_cluster(self, state: &State) -> Result<(), ApiError> {
        let Some(node) = &state.cluster else { return Ok(()) };
        let Err(e) = keep_account(state, node, &self.resident).await else { return Ok(()) };
        if let Some(before) = &self.before {
            if let Err(undo) = state.home.accounts().adopt_account_record(&self.resident, before) {
                tracing::error!(resident = %self.resident, error = %undo, "cannot undo an account change the cluster did not take");
            }
        }
        Err(e)
    }
}

async fn keep_account(state: &State, node: &ClusterNode, resident: &ResidentName) -> Result<(), ApiError> {
    let Some(record) = state.home.accounts().account_record(resident) else { return Ok(()) };
    Ok(node.cluster.keep_account(resident, record).await?)
}
