//! The operator's verbs for hosting: `serve` (alone, or as a node of a
//! cluster on NATS) and `cluster key|status|move`. The server itself is the
//! `domicile-server` crate.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use domicile_home::Home;
use domicile_server::ServerConfig;
use serde_json::json;

use crate::answer::{lines, say};

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Be a node of the cluster coordinated by this NATS server, with
    /// JetStream on (`tls://nats.example:4222`, or the servers of a NATS
    /// cluster separated by commas); needs --node, and credentials and
    /// TLS (the --nats-* flags) unless --insecure-nats.
    #[arg(long, value_name = "NATS_URL", requires = "node")]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// This node's name in the cluster (`n1`).
    #[arg(long, requires = "cluster")]
    pub node: Option<String>,
    /// The URL residents reach this node at, shown by `cluster status`
    /// (default: http:// and the address this server listens on); its
    /// host is also where the other nodes reach the peer port.
    #[arg(long, value_name = "URL", requires = "cluster")]
    pub advertise: Option<String>,
    /// Address of the port the other nodes forward requests to, over TLS
    /// (this node's certificate is made at each start and named in its
    /// heartbeat); default: the IP of --addr and a free port. Open it
    /// to the other nodes only.
    #[arg(long, value_name = "ADDR", requires = "cluster")]
    pub peer_addr: Option<std::net::SocketAddr>,
    /// Seconds without a heartbeat after which the others take this node for gone.
    #[arg(long, default_value_t = 6, requires = "cluster")]
    pub lease_s: u64,
    /// Copies of the cluster's state JetStream keeps, when the buckets
    /// are first made (3 on a NATS cluster of 3 servers survives one's loss).
    #[arg(long, default_value_t = 1, requires = "cluster")]
    pub replicas: usize,
    /// Seconds after it was sealed within which NATS must have stored a
    /// cluster entry; one stored later is an earlier entry put back (a
    /// replay) and is refused. Widen it only for clocks that drift apart.
    #[arg(long, default_value_t = 300, requires = "cluster")]
    pub replay_window_s: u64,
}

#[derive(clap::Subcommand, serde::Serialize, serde::Deserialize)]
pub enum ClusterCommand {
    /// Make the cluster's key, once, into a new file readable by you alone;
    /// copy it to every node (`--cluster-key FILE`), as you would a TLS key.
    Key {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// The live nodes, their addresses and residents, and residents whose node is not live.
    Status {
        /// The cluster's NATS server.
        #[arg(long, value_name = "NATS_URL")]
        cluster: String,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Move a resident to another node while they use the system: their
    /// writes get 503 with Retry-After for the moment it takes, none that
    /// was acknowledged is lost, and the old node drops its copy only once
    /// the new one holds them.
    Move {
        resident: String,
        /// The live node to move them to.
        #[arg(long, value_name = "NODE")]
        to: String,
        /// The cluster's NATS server.
        #[arg(long, value_name = "NATS_URL")]
        cluster: String,
        #[command(flatten)]
        nats: NatsArgs,
    },
}

/// How to authenticate to the cluster's NATS servers and encrypt the
/// connection: the settings every NATS client takes. Without credentials
/// and TLS a node refuses to join, unless --insecure-nats.
#[derive(clap::Args, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct NatsArgs {
    /// A NATS credentials file (`.creds`: the user's JWT and nkey seed).
    #[arg(long, value_name = "FILE", env = "DOMICILE_NATS_CREDS")]
    nats_creds: Option<PathBuf>,
    /// A file holding the user's nkey seed (`SU...`).
    #[arg(long, value_name = "FILE", env = "DOMICILE_NATS_NKEY")]
    nats_nkey: Option<PathBuf>,
    /// A user of the NATS server's configuration (with --nats-password-file).
    #[arg(long, value_name = "NAME", env = "DOMICILE_NATS_USER", requires = "nats_password_file")]
    nats_user: Option<String>,
    /// The file holding that user's password (never on the command line).
    #[arg(long, value_name = "FILE", env = "DOMICILE_NATS_PASSWORD_FILE", requires = "nats_user")]
    nats_password_file: Option<PathBuf>,
    /// The certificate authority (PEM) that signed the NATS servers'
    /// certificates; TLS is then required.
    #[arg(long, value_name = "FILE", env = "DOMICILE_NATS_CA")]
    nats_ca: Option<PathBuf>,
    /// This node's client certificate (PEM), for servers that verify their clients.
    #[arg(long, value_name = "FILE", env = "DOMICILE_NATS_CERT", requires = "nats_key")]
    nats_cert: Option<PathBuf>,
    /// The key (PEM) of --nats-cert.
    #[arg(long, value_name = "FILE", env = "DOMICILE_NATS_KEY", requires = "nats_cert")]
    nats_key: Option<PathBuf>,
    /// The cluster's key (made once by `domicile cluster key --out FILE`,
    /// the same file on every node): what the nodes share in NATS is
    /// sealed with it, and nothing NATS holds is believed without it.
    #[arg(long, value_name = "FILE", env = "DOMICILE_CLUSTER_KEY")]
    cluster_key: Option<PathBuf>,
    /// Use a NATS connection without authentication or TLS all the same:
    /// only for a test with NATS on this machine, since whoever reaches
    /// the NATS port can then read and change every resident's data.
    #[arg(long)]
    insecure_nats: bool,
}

impl NatsArgs {
    /// The access to the NATS servers at `url` (checked: authenticated and
    /// encrypted, unless --insecure-nats) and the cluster's key.
    pub fn cluster(&self, url: &str) -> anyhow::Result<(domicile_cluster::NatsAccess, domicile_cluster::ClusterKey)> {
        let access = self.access(url);
        access.check()?;
        let Some(path) = &self.cluster_key else {
            anyhow::bail!(
                "the cluster's key is needed (--cluster-key FILE): make it once with `domicile cluster key --out FILE` and give every node the same file, kept as a TLS key is (it never goes into NATS)"
            )
        };
        Ok((access, domicile_cluster::ClusterKey::load(path)?))
    }

    /// The cluster's key file, if one was given.
    pub fn cluster_key_file(&self) -> Option<&std::path::Path> {
        self.cluster_key.as_deref()
    }

    /// The access to the NATS servers at `url` these flags describe.
    pub fn access(&self, url: &str) -> domicile_cluster::NatsAccess {
        domicile_cluster::NatsAccess {
            url: url.to_owned(),
            creds: self.nats_creds.clone(),
            nkey: self.nats_nkey.clone(),
            user: self.nats_user.clone(),
            password_file: self.nats_password_file.clone(),
            ca: self.nats_ca.clone(),
            cert: self.nats_cert.clone(),
            key: self.nats_key.clone(),
            insecure: self.insecure_nats,
        }
    }
}

/// `domicile serve`, alone or joining a cluster; `run` runs the commands a
/// `domicile` beside the server sends it.
pub async fn serve_home(home: Home, args: ServeArgs, run: crate::control::Runner) -> Result<()> {
    let ServeArgs { addr, cluster, nats, node, advertise, peer_addr, lease_s, replicas, replay_window_s } = args;
    let cluster = match (cluster, node) {
        (Some(url), Some(node)) => {
            let (nats, key) = nats.cluster(&url)?;
            Some(JoinOptions { nats, key, node, advertise, peer_addr, lease_s, replicas, replay_window_s })
        }
        _ => None,
    };
    serve(home, addr, cluster, run).await
}

/// `domicile cluster key|status|move`: no home needed.
pub async fn cluster(command: &ClusterCommand, json: bool) -> Result<()> {
    match command {
        ClusterCommand::Key { out } => {
            domicile_cluster::ClusterKey::generate().write_new(out)?;
            say(json, &json!({ "cluster_key": out }), |_| {
                format!(
                    "wrote the cluster's key to {}: copy it to every node (--cluster-key), never into NATS",
                    out.display()
                )
            })
        }
        ClusterCommand::Status { cluster, nats } => {
            let (access, key) = nats.cluster(cluster)?;
            cluster_status(&access, &key, json).await
        }
        ClusterCommand::Move { resident, to, cluster, nats } => {
            let (access, key) = nats.cluster(cluster)?;
            cluster_move(&access, &key, &resident.parse()?, &to.parse()?, json).await
        }
    }
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
async fn cluster_status(
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
async fn cluster_move(
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
