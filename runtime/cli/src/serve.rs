//! The operator's verbs for hosting: `serve`, residents' passwords and the
//! operator token. The server itself is the `domicile-server` crate.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use domicile_home::{Home, Password};
use domicile_server::ServerConfig;
use domicile_store::ResidentName;
use serde_json::json;

use crate::answer::{lines, say};

/// A password from the first line of stdin, or a generated one.
fn password_from(stdin: bool) -> Result<Password> {
    if !stdin {
        return Ok(Password::Generate);
    }
    let line = crate::io::stdin_line().context("cannot read the password from stdin")?;
    Ok(Password::Given(line.unwrap_or_default()))
}

/// `resident add NAME`: the resident's space and their sign-in password.
pub fn add_resident(home: &Home, name: &str, password_stdin: bool, json: bool) -> Result<()> {
    let name: ResidentName = name.parse()?;
    let added = home.add_resident(&name, password_from(password_stdin)?)?;
    report_password(&name, added.password.as_ref(), "added resident", json)?;
    Ok(())
}

/// `resident password NAME`: a new password (the old one stops working).
pub fn set_password(home: &Home, name: &str, password_stdin: bool, json: bool) -> Result<()> {
    let name: ResidentName = name.parse()?;
    let generated = home.set_password(&name, password_from(password_stdin)?)?;
    report_password(&name, generated.as_ref(), "new password for", json)?;
    Ok(())
}

fn report_password(name: &ResidentName, generated: Option<&String>, what: &str, json: bool) -> Result<()> {
    say(json, &json!({ "name": name.as_str(), "password": generated }), |_| {
        match generated {
        Some(password) => format!("{what} `{name}`\n  password to sign in to the web UI: {password}\n  (shown once: hand it to {name}, who can change it after signing in)"),
        None => format!("{what} `{name}`"),
    }
    })
}

/// `operator-token`: a new token for the admin API; the old one stops working.
pub fn operator_token(home: &Home, json: bool) -> Result<()> {
    let token = home.new_operator_token()?;
    say(json, &json!({ "token": token }), |_| {
        format!("{token}\n(shown once; send it as `Authorization: Bearer ...` to /api/v1/admin; a new one replaces it)")
    })
}

/// `serve --cluster URL --node NAME`: how this server joins a cluster.
pub struct JoinOptions {
    pub nats: domicile_cluster::NatsAccess,
    pub key: domicile_cluster::ClusterKey,
    pub node: String,
    pub advertise: Option<String>,
    pub peer_addr: Option<SocketAddr>,
    pub lease_s: u64,
    pub replicas: usize,
    pub replay_window_s: u64,
}

/// The host of an `http(s)://host:port` URL: where the other nodes reach
/// this one's peer port too.
fn advertised_host(url: &str) -> Result<&str> {
    let authority =
        url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).map(|r| r.trim_end_matches('/'));
    let host = authority.and_then(|a| a.rsplit_once(':').map(|(host, _)| host)).filter(|h| !h.is_empty());
    host.with_context(|| format!("--advertise {url} is not an http(s)://host:port URL"))
}

/// `serve`: the HTTP server, until Ctrl-C or SIGTERM.
/// `run` runs the commands a `domicile` beside the server sends it.
pub async fn serve(
    home: Home,
    addr: SocketAddr,
    cluster: Option<JoinOptions>,
    run: crate::control::Runner,
) -> Result<()> {
    let mut config = ServerConfig::from_settings(&home.config()?.server);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let mut joined = None;
    let mut peer_port = None;
    if let Some(join) = cluster {
        let advertise = match join.advertise {
            Some(url) => url,
            None if bound.ip().is_unspecified() => {
                bail!("--addr {bound} listens on every interface: say with --advertise which URL the other nodes reach this one at")
            }
            None => format!("http://{bound}"),
        };
        let peer_addr = join.peer_addr.unwrap_or(SocketAddr::new(bound.ip(), 0));
        let peers = tokio::net::TcpListener::bind(peer_addr)
            .await
            .with_context(|| format!("cannot listen for the other nodes on {peer_addr} (--peer-addr)"))?;
        let peer = format!("{}:{}", advertised_host(&advertise)?, peers.local_addr()?.port());
        let identity = domicile_server::PeerIdentity::generate()?;
        let peer_certificate_sha256 = identity.certificate_sha256();
        peer_port = Some(domicile_server::PeerPort { listener: peers, identity });
        if !(2..=3600).contains(&join.lease_s) {
            bail!("--lease-s must be 2 to 3600 seconds");
        }
        if !(1..=86_400).contains(&join.replay_window_s) {
            bail!("--replay-window-s must be 1 to 86400 seconds");
        }
        if !(1..=5).contains(&join.replicas) {
            bail!("--replicas must be 1 to 5 (JetStream's limit), and at most the NATS cluster's servers");
        }
        // What the node must not forget across a restart.
        let state_dir = home.dir().join("cluster-state");
        std::fs::create_dir_all(&state_dir).with_context(|| format!("cannot make {}", state_dir.display()))?;
        let options = domicile_cluster::ClusterOptions {
            nats: join.nats.clone(),
            key: join.key.clone(),
            node: join.node.parse()?,
            advertise: advertise.clone(),
            peer: peer.clone(),
            peer_certificate_sha256,
            lease: std::time::Duration::from_secs(join.lease_s),
            session_ttl: config.session_ttl,
            replicas: join.replicas,
            state_dir: Some(state_dir),
            replay_window: std::time::Duration::from_secs(join.replay_window_s),
        };
        config.cluster = Some(domicile_cluster::Cluster::join(options).await?);
        joined = Some(format!(
            "  node `{}` of the cluster at {}, reached at {advertise}, by the other nodes at {peer} (TLS)",
            join.node, join.nats.url
        ));
    }
    let home = std::sync::Arc::new(home);
    // `domicile` commands on this home reach the server through it (ready
    // before the server says it serves).
    let control =
        match crate::control::listen(home.clone(), tokio::runtime::Handle::current(), config.cluster.is_some(), run) {
            Ok(control) => Some(control),
            // A home whose path is too long for a Unix socket (about 100
            // bytes), say: the server still serves, the CLI cannot reach it.
            Err(e) => {
                errln!("domicile: {e:#}; `domicile` commands on this home cannot reach the server while it runs");
                None
            }
        };
    outln!("domicile: serving http://{bound}/");
    if let Some(joined) = joined {
        outln!("{joined}");
    }
    let accounts = home.accounts();
    if home.store().residents()?.iter().all(|r| !accounts.has_account(r)) {
        outln!(
            "  no resident can sign in yet: `domicile resident add NAME` (or `resident password NAME`) sets a password"
        );
    }
    if !accounts.has_operator_token() {
        outln!("  no operator token yet: `domicile operator-token` makes one for /api/v1/admin");
    }
    domicile_server::serve(home, config, listener, peer_port, domicile_server::shutdown_signal()).await?;
    drop(control);
    outln!("domicile: stopped");
    Ok(())
}

/// `cluster status`: the live nodes and where the residents are.
pub async fn cluster_status(
    nats: &domicile_cluster::NatsAccess,
    key: &domicile_cluster::ClusterKey,
    json: bool,
) -> Result<()> {
    let observer = domicile_cluster::Cluster::observe(nats, key).await?;
    let nodes = observer.live_nodes().await?;
    let placements = observer.placements().await?;
    let moves: Vec<_> = observer.moves().await?.into_iter().filter(|m| !m.record.state.finished()).collect();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let held_by = |node: &domicile_cluster::NodeName| placements.iter().filter(|p| &p.node == node).count();
    let stranded: Vec<_> = placements
        .iter()
        .filter(|p| !nodes.iter().any(|(n, _)| n == &p.node))
        .map(|p| (p.resident.as_str(), p.node.as_str()))
        .collect();
    let nodes_json: Vec<_> = nodes
        .iter()
        .map(|(name, record)| {
            json!({
                "node": name.as_str(),
                "advertise": record.advertise,
                "peer": record.peer,
                "peer_certificate_sha256": record.peer_certificate_sha256,
                "residents": held_by(name),
                "residents_on_disk": record.residents,
                "heartbeat_age_ms": now_ms.saturating_sub(record.heartbeat_ms),
                "up_ms": now_ms.saturating_sub(record.started_ms),
            })
        })
        .collect();
    let stranded_json: Vec<_> = stranded.iter().map(|(r, n)| json!({ "resident": r, "node": n })).collect();
    let moves_json: Vec<_> = moves
        .iter()
        .map(|m| json!({ "resident": m.resident.as_str(), "to": m.record.to.as_str(), "state": m.record.state }))
        .collect();
    let answer = json!({ "nodes": nodes_json, "residents": placements.len(), "on_nodes_not_live": stranded_json, "moves": moves_json });
    say(json, &answer, |_| {
        let mut shown = Vec::new();
        if nodes.is_empty() {
            shown.push("no live node".to_owned());
        }
        for (name, record) in &nodes {
            shown.push(format!(
                "{name:<12} live   {:>6} resident(s)   {}   last heartbeat {:.1} s ago",
                held_by(name),
                record.advertise,
                now_ms.saturating_sub(record.heartbeat_ms) as f64 / 1000.0
            ));
        }
        shown.push(format!("{} resident(s) placed", placements.len()));
        for (resident, node) in &stranded {
            shown.push(format!("  {resident}: held by `{node}`, which is not live"));
        }
        for m in &moves {
            shown.push(format!("  {}: moving to `{}` ({:?})", m.resident, m.record.to, m.record.state));
        }
        lines(shown)
    })
}

/// `cluster move`: asks the nodes to move a resident, and waits until
/// they did (or say why not).
pub async fn cluster_move(
    nats: &domicile_cluster::NatsAccess,
    key: &domicile_cluster::ClusterKey,
    resident: &domicile_store::ResidentName,
    to: &domicile_cluster::NodeName,
    json: bool,
) -> Result<()> {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(180);
    let observer = domicile_cluster::Cluster::observe(nats, key).await?;
    let started = std::time::Instant::now();
    let finished = observer.move_resident(resident, to, PATIENCE).await?;
    let ms = started.elapsed().as_millis() as u64;
    if finished.record.state != domicile_cluster::MoveState::Done {
        let reason = finished.record.reason.unwrap_or_else(|| "no reason given".into());
        anyhow::bail!("the move of `{resident}` to `{to}` failed: {reason}; they stay where they were");
    }
    let from = finished.record.from.map(|n| n.to_string()).unwrap_or_default();
    let answer = json!({ "resident": resident.as_str(), "from": from, "to": to.as_str(), "ms": ms });
    say(json, &answer, |_| format!("moved `{resident}` from `{from}` to `{to}` in {ms} ms"))
}
