//! The state the nodes of a domicile cluster share, kept in NATS JetStream
//! key-value buckets instead of any one node's memory. NATS orders,
//! persists and replicates it; domicile adds no protocol of its own. NATS
//! is reached authenticated and over TLS ([`NatsAccess`]), and believed on
//! nothing: every value is sealed with the cluster's key, which never goes
//! into NATS, and refused when it does not open (modules `seal`, `bucket`).
//!
//! - `domicile-nodes`: one key per live node, with the address its HTTP
//!   server answers on and how many residents it holds. A node puts it at
//!   every heartbeat; the bucket's maximum age is the lease, so a node that
//!   stops heartbeating drops out of it one lease later.
//! - `domicile-placement`: one key per resident, naming the node that holds
//!   their space (a resident's data lives on one node at a time). It is
//!   created once, first writer wins, and changed only by compare-and-set
//!   on the key's revision: two nodes can never both succeed in taking a
//!   resident.
//! - `domicile-sessions`: signed-in browsers, by a keyed hash of their
//!   cookie, expiring with the session: a sign-in made through one node
//!   works on every node, and survives a node's restart.
//! - `domicile-tokens`: whose an API token is (by a keyed hash), so that
//!   any node knows where to forward a script's request; the node holding
//!   the resident still checks the token itself.
//! - `domicile-accounts`: each resident's account as their holder keeps it
//!   (argon2 password hash, API token hashes; never a secret), so that a
//!   node taking a resident over can sign them in.
//! - Residents' logs of committed writes, and snapshots of their spaces:
//!   see [`SpaceLogs`]; `domicile-log-ends`: where each one ends, as its
//!   holder reports it (see `log_ends`).
//! - `domicile-trust`: the trust store and the catalogues, the same for
//!   every node: see [`shared`](crate::shared).
//! - `domicile-moves`: the moves of residents from node to node under
//!   way, and those finished in the last hour: see [`moves`].
//! - `domicile-operator`: a keyed hash of the operator's token, the same
//!   on every node. (The secret nodes prove a forwarded request with is
//!   derived from the cluster's key: it is not in NATS.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use async_nats::jetstream::{self, kv};
use bucket::Bucket;
use domicile_store::ResidentName;
use seal::Seal;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

mod access;
mod bucket;
mod log;
mod log_ends;
pub mod moves;
mod names;
mod newest;
mod permissions;
mod recent;
mod seal;
mod shared;
pub mod untrusted;

pub use access::NatsAccess;
pub use log::{LogTail, Shipped, SpaceLogs};
pub use moves::{Move, MoveRecord, MoveState, MoveWatch};
pub use names::{InvalidNodeName, NodeName};
pub use permissions::{node_permissions, streams};
pub use recent::RecentMemory;
pub use seal::{same_secret, ClusterKey, DEFAULT_REPLAY_WINDOW};
pub use shared::{SharedCampaign, SharedCatalogue, SharedChange, SharedWatch, Versioned};

const NODES: &str = "domicile-nodes";
const PLACEMENT: &str = "domicile-placement";
const SESSIONS: &str = "domicile-sessions";
const TOKENS: &str = "domicile-tokens";
const OPERATOR: &str = "domicile-operator";
const ACCOUNTS: &str = "domicile-accounts";
const OPERATOR_KEY: &str = "token";
/// Where nodes of an earlier version kept their shared secret, in clear,
/// and the operator token's SHA-256: deleted when a node joins.
const LEGACY_OPERATOR_KEYS: [&str; 2] = ["node-secret", "token-sha256"];

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach NATS at {url}: {detail}; start a NATS server with JetStream on (`nats-server -js`) or correct --cluster and its --nats-* settings")]
    Connect { url: String, detail: String },
    #[error("the NATS settings are not usable: {detail}")]
    Access { detail: String },
    #[error("refusing to use the NATS connection to {url}: it is {missing}, so anyone who reaches the NATS port could read and rewrite every resident's sessions, accounts and data. Give credentials (--nats-creds FILE, --nats-nkey FILE, or --nats-user NAME with --nats-password-file FILE) and TLS (--nats-ca FILE, or tls:// URLs), as the operator's guide shows; only for a test with NATS on this machine, say --insecure-nats")]
    Insecure { url: String, missing: &'static str },
    #[error("NATS JetStream refused to {what}: {detail}")]
    Nats { what: String, detail: String },
    #[error("the cluster's record {key} is not readable ({detail}); was it written by another program?")]
    Corrupt { key: String, detail: String },
    #[error("node `{0}` is not live in the cluster (`domicile cluster status` lists the live ones)")]
    NotLive(NodeName),
    #[error("the cluster's {what} was changed through another node at the same time; try again")]
    Changed { what: String },
    #[error("no node of the cluster holds resident `{0}`")]
    NotPlaced(ResidentName),
    #[error("no node of the cluster is live")]
    NoLiveNode,
    #[error("resident `{resident}` is already held by node `{holder}`")]
    Taken { resident: ResidentName, holder: NodeName },
    #[error("resident `{resident}` changed hands while this node was changing it; look again")]
    Moved { resident: ResidentName },
    #[error("this node no longer holds resident `{resident}`: another node took them over")]
    NotHolder { resident: ResidentName },
    #[error("resident `{resident}` is already being moved to node `{to}`; wait for that move to finish (`domicile cluster status` lists the moves under way)")]
    MoveUnderWay { resident: ResidentName, to: NodeName },
    #[error("the move of resident `{resident}` did not finish within {} s; `domicile cluster status` shows where it stands", waited.as_secs())]
    MoveTimedOut { resident: ResidentName, waited: Duration },
}

pub type Result<T, E = ClusterError> = std::result::Result<T, E>;

fn nats(what: &str, error: impl std::fmt::Display) -> ClusterError {
    ClusterError::Nats { what: what.to_owned(), detail: error.to_string() }
}

/// The wall clock in ms since the epoch, as heartbeats and records carry it.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// How a node joins the cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The NATS servers, and how to authenticate to them over TLS.
    pub nats: NatsAccess,
    /// The cluster's key, the same on every node, never in NATS.
    pub key: ClusterKey,
    pub node: NodeName,
    /// The base URL this node serves residents at (`http://10.0.0.5:8080`).
    pub advertise: String,
    /// Where the other nodes forward requests to: this node's peer
    /// listener (`10.0.0.5:8443`, TLS).
    pub peer: String,
    /// The SHA-256 (hex) of the certificate that listener presents: a node
    /// forwards only to a listener presenting it.
    pub peer_certificate_sha256: String,
    /// A node missing its heartbeats this long is taken for gone.
    pub lease: Duration,
    /// How long a browser stays signed in.
    pub session_ttl: Duration,
    /// Copies JetStream keeps of each bucket (up to the NATS cluster's
    /// servers): 3 on a 3-server NATS cluster survives the loss of one.
    pub replicas: usize,
    /// A folder of the node's own where it keeps what it must not forget
    /// across a restart (the newest trust store it saw); none: memory only.
    pub state_dir: Option<std::path::PathBuf>,
    /// How long after it was sealed NATS may store an entry: one stored
    /// later is an earlier entry put back, and refused
    /// ([`DEFAULT_REPLAY_WINDOW`] unless the operator widens it).
    pub replay_window: Duration,
}

/// What a live node says of itself at each heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub advertise: String,
    /// Its peer listener, `host:port` (absent in the heartbeats of the
    /// version before: such a node is not live to this one).
    #[serde(default)]
    pub peer: String,
    #[serde(default)]
    pub peer_certificate_sha256: String,
    pub residents: u64,
    pub started_ms: u64,
    pub heartbeat_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PlacementRecord {
    node: NodeName,
    since_ms: u64,
}

/// Which node holds a resident, at which revision of the placement key: a
/// change of hands is a compare-and-set against that revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub resident: ResidentName,
    pub node: NodeName,
    pub revision: u64,
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub resident: ResidentName,
    pub csrf: String,
    pub expires_ms: u64,
}

/// This node's handle on the cluster's shared state.
#[derive(Clone)]
pub struct Cluster {
    options: ClusterOptions,
    started_ms: u64,
    nodes: Bucket,
    placement: Bucket,
    sessions: Bucket,
    tokens: Bucket,
    operator: Bucket,
    accounts: Bucket,
    moves: Bucket,
    shared: shared::Shared,
    /// The newest operator's token this node saw (its keyed hash).
    newest_operator: newest::Newest,
    seal: Arc<Seal>,
    logs: Arc<SpaceLogs>,
    /// The tasks following each bucket's changes, stopped with the last
    /// handle on the cluster.
    following: Arc<Following>,
}

struct Following(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Following {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.options.node).field("url", &self.options.nats.url).finish()
    }
}

/// Connects to NATS (`nats.url` may list several servers of a NATS
/// cluster, separated by commas), reconnecting on its own whenever a
/// server goes away.
async fn connect(nats: &NatsAccess, name: &str) -> Result<jetstream::Context> {
    Ok(jetstream::new(nats.connect(name).await?))
}

/// How long a node starting with its NATS cluster waits for JetStream to
/// be ready (its servers elect a leader first) before giving up.
pub(crate) const JETSTREAM_READY_WAIT: Duration = Duration::from_secs(30);

/// What `attempt` gives once JetStream is ready: a NATS cluster just
/// started (or one that lost a server) elects its leaders first and
/// refuses or times out meanwhile, so a starting node tries again for
/// [`JETSTREAM_READY_WAIT`] before it gives up and says `what` failed.
pub(crate) async fn when_ready<T, E, F, Fut>(what: &str, mut attempt: F) -> Result<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, E>>,
{
    let started = std::time::Instant::now();
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if started.elapsed() < JETSTREAM_READY_WAIT => {
                tracing::info!(what, error = %error, "waiting for JetStream");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(nats(what, error)),
        }
    }
}

/// The bucket, created with `config` when it does not exist yet (nodes
/// starting together may race to create it: the loser finds it), its
/// values sealed with `seal`, its recent changes remembered in a file of
/// `state_dir` (none: in memory only).
async fn bucket(
    js: &jetstream::Context,
    config: kv::Config,
    seal: &Arc<Seal>,
    state_dir: Option<&std::path::Path>,
) -> Result<Bucket> {
    let store = when_ready(&format!("create the bucket {}", config.bucket), || async {
        if let Ok(store) = js.get_key_value(&config.bucket).await {
            return Ok(store);
        }
        match js.create_key_value(config.clone()).await {
            Ok(store) => Ok(store),
            Err(created) => js.get_key_value(&config.bucket).await.map_err(|_| created),
        }
    })
    .await?;
    let kept_in = state_dir.map(|dir| dir.join(format!("seen-{}.json", config.bucket)));
    Ok(Bucket::remembering(store, seal.clone(), kept_in))
}

/// The object store, created when it does not exist yet (as [`bucket`]).
pub(crate) async fn object_store(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
) -> Result<jetstream::object_store::ObjectStore> {
    when_ready(&format!("create the object store {name}"), || async {
        if let Ok(store) = js.get_object_store(name).await {
            return Ok(store);
        }
        let config =
            jetstream::object_store::Config { bucket: name.into(), num_replicas: replicas, ..Default::default() };
        match js.create_object_store(config).await {
            Ok(store) => Ok(store),
            Err(created) => js.get_object_store(name).await.map_err(|_| created),
        }
    })
    .await
}

impl Cluster {
    /// Joins the cluster at `options.url`: connects and makes sure the
    /// shared buckets exist. The node is live from its first heartbeat.
    pub async fn join(options: ClusterOptions) -> Result<Cluster> {
        let js = connect(&options.nats, &format!("domicile node {}", options.node)).await?;
        let replicas = options.replicas.max(1);
        let config = |bucket: &str, history: i64, max_age: Duration| kv::Config {
            bucket: bucket.into(),
            history,
            max_age,
            num_replicas: replicas,
            ..Default::default()
        };
        let seal = Arc::new(Seal::with_replay_window(&options.key, options.replay_window));
        let state_dir = options.state_dir.as_deref();
        let bucket = |config: kv::Config| bucket(&js, config, &seal, state_dir);
        let operator = bucket(config(OPERATOR, 1, Duration::ZERO)).await?;
        let ends = log_ends::LogEnds::new(bucket(config(log_ends::LOG_ENDS, 1, Duration::ZERO)).await?);
        // An earlier version kept the nodes' shared secret there, in clear.
        for legacy in LEGACY_OPERATOR_KEYS {
            let _ = operator.kv.purge(legacy).await;
        }
        let mut cluster = Cluster {
            nodes: bucket(config(NODES, 1, options.lease)).await?,
            placement: bucket(config(PLACEMENT, 5, Duration::ZERO)).await?,
            sessions: bucket(config(SESSIONS, 1, options.session_ttl)).await?,
            tokens: bucket(config(TOKENS, 1, Duration::ZERO)).await?,
            accounts: bucket(config(ACCOUNTS, 1, Duration::ZERO)).await?,
            moves: bucket(config(moves::MOVES, 1, moves::MOVE_RECORD_AGE)).await?,
            shared: shared::Shared {
                kv: bucket(config(shared::SHARED, 1, Duration::ZERO)).await?,
                newest_trust: newest::Newest::open(options.state_dir.as_ref().map(|d| d.join("trust-seen.json"))),
                files: object_store(&js, shared::CATALOGUE_FILES, replicas).await?,
            },
            logs: Arc::new(SpaceLogs::open(&js, options.node.clone(), replicas, seal.clone(), ends).await?),
            newest_operator: newest::Newest::open(options.state_dir.as_ref().map(|d| d.join("operator-seen.json"))),
            operator,
            seal,
            started_ms: now_ms(),
            options,
            following: Arc::new(Following(Vec::new())),
        };
        let mut following: Vec<_> = cluster.buckets().iter().map(|bucket| bucket.follow_changes()).collect();
        following.push(log_ends::LogEnds::report_continually(cluster.logs.ends().clone()));
        cluster.following = Arc::new(Following(following));
        cluster.encrypt_what_is_in_clear().await?;
        Ok(cluster)
    }

    /// The upgrade from the version that sealed values without encrypting
    /// them: every bucket's values it wrote are put again encrypted. The
    /// residents' logs are written again from a snapshot when their holder
    /// attaches them (see [`SpaceLogs::in_clear_at`]).
    async fn encrypt_what_is_in_clear(&self) -> Result<()> {
        for bucket in self.buckets() {
            let encrypted = bucket.encrypt_in_clear().await?;
            if encrypted > 0 {
                tracing::info!(bucket = %bucket.kv.name, encrypted, "values the previous version wrote in clear are now encrypted");
            }
        }
        Ok(())
    }

    /// What this node remembers of every bucket's recent changes, for a
    /// node that was not following them to learn ([`Self::learn_recent`]).
    pub fn recent_memory(&self) -> RecentMemory {
        RecentMemory { buckets: self.buckets().iter().map(|b| (b.kv.name.clone(), b.memory())).collect() }
    }

    /// Learns what another node of the cluster remembers of the buckets'
    /// recent changes: a node that was stopped, or starts anew without its
    /// home, then refuses an earlier value put back while it was away as
    /// the nodes that saw the newer one do. Buckets it does not know are
    /// left out. Returns how many keys it was taught.
    pub fn learn_recent(&self, memory: RecentMemory) -> usize {
        let mut buckets = memory.buckets;
        self.buckets().iter().map(|b| buckets.remove(&b.kv.name).map_or(0, |memory| b.learn(memory))).sum()
    }

    fn buckets(&self) -> [&Bucket; 9] {
        [
            &self.operator,
            &self.nodes,
            &self.placement,
            &self.sessions,
            &self.tokens,
            &self.accounts,
            &self.moves,
            &self.shared.kv,
            self.logs.ends().bucket(),
        ]
    }

    /// Reads the cluster's state without being a node (`domicile cluster
    /// status`), believing only what the cluster's `key` sealed.
    pub async fn observe(nats: &NatsAccess, key: &ClusterKey) -> Result<Observer> {
        let js = connect(nats, "domicile cluster status").await?;
        let seal = Arc::new(Seal::new(key));
        let open = |name: &'static str| {
            let (js, seal) = (js.clone(), seal.clone());
            async move {
                let store = js.get_key_value(name).await.map_err(|e| ClusterError::Nats {
                    what: format!("open the bucket {name} (has a node of this cluster started yet?)"),
                    detail: e.to_string(),
                })?;
                Ok::<_, ClusterError>(Bucket::new(store, seal))
            }
        };
        Ok(Observer { nodes: open(NODES).await?, placement: open(PLACEMENT).await?, moves: open(moves::MOVES).await? })
    }

    /// The secret every node of the cluster shares: a request forwarded by
    /// a node carries it, so that a client cannot pass for a node. Derived
    /// from the cluster's key: it is nowhere in NATS.
    pub fn node_secret(&self) -> &str {
        self.seal.forwarding()
    }

    pub fn node(&self) -> &NodeName {
        &self.options.node
    }

    pub fn options(&self) -> &ClusterOptions {
        &self.options
    }

    /// Says this node is alive, and how many residents it holds.
    pub async fn heartbeat(&self, residents: u64) -> Result<()> {
        let record = NodeRecord {
            advertise: self.options.advertise.clone(),
            peer: self.options.peer.clone(),
            peer_certificate_sha256: self.options.peer_certificate_sha256.clone(),
            residents,
            started_ms: self.started_ms,
            heartbeat_ms: now_ms(),
        };
        let value = serde_json::to_vec(&record).expect("a node record serialises");
        self.nodes.put(self.options.node.as_str(), &value, "heartbeat").await?;
        Ok(())
    }

    /// Leaves the cluster at once rather than one lease later (a clean stop).
    pub async fn leave(&self) -> Result<()> {
        self.nodes.remove(self.options.node.as_str(), "leave the cluster").await
    }

    pub async fn live_nodes(&self) -> Result<Vec<(NodeName, NodeRecord)>> {
        live_nodes(&self.nodes).await
    }

    /// The live node's record, or `NotLive`.
    pub async fn live_node(&self, node: &NodeName) -> Result<NodeRecord> {
        match self.nodes.entry(node.as_str(), "read a node's heartbeat").await? {
            Some(entry) => {
                let key = format!("{NODES}/{node}");
                let record: NodeRecord = decode(&key, &entry.value)?;
                record.check().map_err(|detail| refuse(&key, &detail))?;
                Ok(record)
            }
            None => Err(ClusterError::NotLive(node.clone())),
        }
    }

    /// The node holding `resident`, if any holds them.
    pub async fn holder(&self, resident: &ResidentName) -> Result<Option<Placement>> {
        holder(&self.placement, resident).await
    }

    /// Places a resident no node holds yet on `node`; `Taken` when one does.
    pub async fn place(&self, resident: &ResidentName, node: &NodeName) -> Result<Placement> {
        let record = PlacementRecord { node: node.clone(), since_ms: now_ms() };
        let value = serde_json::to_vec(&record).expect("a placement serialises");
        match self.placement.create(resident.as_str(), &value).await {
            Ok(revision) => Ok(Placement { resident: resident.clone(), node: node.clone(), revision }),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => match self.holder(resident).await? {
                Some(held) => Err(ClusterError::Taken { resident: resident.clone(), holder: held.node }),
                // The key holds nothing genuine (a placement written before
                // values were sealed, or forged over every genuine one):
                // placed over it, by compare-and-set.
                None => match self.placement.refused_revision(resident.as_str(), "place a resident").await? {
                    Some(refused) => match self.placement.update(resident.as_str(), &value, refused).await {
                        Ok(revision) => Ok(Placement { resident: resident.clone(), node: node.clone(), revision }),
                        Err(_) => Err(ClusterError::Moved { resident: resident.clone() }),
                    },
                    None => Err(ClusterError::Moved { resident: resident.clone() }),
                },
            },
            Err(e) => Err(nats("place a resident", e)),
        }
    }

    /// Forgets where a resident was (they were removed); only if `held`
    /// is still the current placement (compare-and-set on its revision).
    pub async fn unplace(&self, held: &Placement) -> Result<()> {
        let Err(e) = self.placement.remove_at(held.resident.as_str(), held.revision).await else {
            return Ok(());
        };
        if self.holder(&held.resident).await?.as_ref() != Some(held) {
            return Err(ClusterError::Moved { resident: held.resident.clone() });
        }
        Err(nats("remove a placement", e))
    }

    /// Takes a resident over from a node that is gone: one compare-and-set
    /// on the placement's revision, so of several survivors trying, one wins
    /// (`Moved` for the others).
    pub async fn take_over(&self, held: &Placement) -> Result<Placement> {
        let record = PlacementRecord { node: self.options.node.clone(), since_ms: now_ms() };
        let value = serde_json::to_vec(&record).expect("a placement serialises");
        match self.placement.update(held.resident.as_str(), &value, held.revision).await {
            Ok(revision) => {
                Ok(Placement { resident: held.resident.clone(), node: self.options.node.clone(), revision })
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                Err(ClusterError::Moved { resident: held.resident.clone() })
            }
            Err(e) => Err(nats("take a resident over", e)),
        }
    }

    /// The move of `resident`, if one is under way or finished lately.
    pub async fn move_of(&self, resident: &ResidentName) -> Result<Option<Move>> {
        moves::get(&self.moves, resident).await
    }

    /// Carries a move forward (a compare-and-set on its record).
    pub async fn advance_move(&self, from: &Move, to: MoveRecord) -> Result<Move> {
        moves::advance(&self.moves, from, to).await
    }

    /// Waits until `moving` (a move's record as read) is in one of
    /// `states`, or done or failed, `patience` at most.
    pub async fn wait_for_move(&self, moving: &Move, states: &[MoveState], patience: Duration) -> Result<Move> {
        moves::wait_for(&self.moves, &moving.resident, Some(moving.record.requested_ms), states, patience).await
    }

    /// The moves as they change from now on.
    pub async fn watch_moves(&self) -> Result<MoveWatch> {
        MoveWatch::start(&self.moves).await
    }

    /// The cluster's trust store (the bytes of a `trust.json`), if a node put one.
    pub async fn shared_trust(&self) -> Result<Option<Versioned<Vec<u8>>>> {
        self.shared.trust().await
    }

    /// Puts the cluster's trust store: created when `after` is `None`, else
    /// changed from that revision (`Changed` when another node was first).
    pub async fn put_trust(&self, bytes: Vec<u8>, after: Option<u64>) -> Result<u64> {
        self.shared.put_trust(bytes, after).await
    }

    /// Puts this node's trust store over the cluster's when the cluster's
    /// was refused (forged, older than one this node saw, or written
    /// before values were sealed), by compare-and-set on its revision.
    pub async fn heal_trust(&self, bytes: Vec<u8>) -> Result<u64> {
        self.shared.heal_trust(bytes).await
    }

    /// The cluster's catalogues.
    pub async fn shared_catalogues(&self) -> Result<Vec<SharedCatalogue>> {
        Ok(self.shared.catalogues().await?.value)
    }

    /// Shares the catalogue in `dir`: its `files` (relative paths, the
    /// index first) are copied to the cluster, unless it has them already.
    pub async fn share_catalogue(
        &self,
        name: &str,
        dir: &std::path::Path,
        files: &[String],
    ) -> Result<SharedCatalogue> {
        self.shared.share_catalogue(name, dir, files).await
    }

    /// Copies a catalogue of the cluster into the folder `into`.
    pub async fn fetch_catalogue(&self, catalogue: &SharedCatalogue, into: &std::path::Path) -> Result<()> {
        self.shared.fetch_catalogue(catalogue, into).await
    }

    /// The campaigns of the cluster, as their organisers signed them
    /// (not checked here: a node checks each signature before keeping it).
    pub async fn shared_campaigns(&self) -> Result<Vec<SharedCampaign>> {
        self.shared.campaigns().await
    }

    /// Shares a campaign this node checked, for every node to offer.
    pub async fn share_campaign(&self, campaign: &SharedCampaign) -> Result<()> {
        self.shared.share_campaign(campaign).await
    }

    /// The seed of the attester every node of the cluster vouches for its
    /// residents' campaign reports with: derived from the cluster's key, so
    /// that the leaders of a campaign trust one key for the whole cluster,
    /// and a resident moved to another node is the same participant there.
    pub fn campaign_attester_seed(&self) -> [u8; 32] {
        self.seal.campaign_attester_seed()
    }

    /// The changes of the trust store and catalogues from now on.
    pub async fn watch_shared(&self) -> Result<SharedWatch> {
        self.shared.watch().await
    }

    /// The residents' logs, which this node writes for the residents it holds.
    pub fn logs(&self) -> &std::sync::Arc<SpaceLogs> {
        &self.logs
    }

    /// Keeps the cluster's copy of a resident's account.
    pub async fn keep_account(&self, resident: &ResidentName, record: Vec<u8>) -> Result<()> {
        self.accounts.put(resident.as_str(), &record, "keep an account").await?;
        Ok(())
    }

    /// The cluster's copy of a resident's account; none when it does not
    /// open (refused and counted): the holder puts it again when it
    /// attaches the resident.
    pub async fn account(&self, resident: &ResidentName) -> Result<Option<Vec<u8>>> {
        Ok(self.accounts.genuine_entry(resident.as_str(), "read an account").await?.map(|e| e.value))
    }

    /// Forgets a removed resident's account and log.
    pub async fn forget(&self, resident: &ResidentName) -> Result<()> {
        self.accounts.remove(resident.as_str(), "forget an account").await?;
        self.logs.forget(resident).await
    }

    /// Every resident's placement.
    pub async fn placements(&self) -> Result<Vec<Placement>> {
        placements(&self.placement).await
    }

    /// Where a new resident should go: `preferred` if it is live, else the
    /// live node with the fewest residents by its last heartbeat (by name
    /// on a tie).
    pub async fn choose_node(&self, preferred: Option<&NodeName>) -> Result<NodeName> {
        let live = self.live_nodes().await?;
        if let Some(node) = preferred {
            return live
                .iter()
                .find(|(n, _)| n == node)
                .map(|(n, _)| n.clone())
                .ok_or(ClusterError::NotLive(node.clone()));
        }
        live.into_iter()
            .min_by(|(a, ra), (b, rb)| ra.residents.cmp(&rb.residents).then_with(|| a.cmp(b)))
            .map(|(node, _)| node)
            .ok_or(ClusterError::NoLiveNode)
    }

    /// Keeps a session under a keyed hash of its cookie's SHA-256 (hex),
    /// for the session's time to live.
    pub async fn open_session(&self, cookie_sha256: &str, resident: ResidentName, csrf: String) -> Result<()> {
        let expires_ms = now_ms() + self.options.session_ttl.as_millis() as u64;
        let value = serde_json::to_vec(&SessionRecord { resident, csrf, expires_ms }).expect("a session serialises");
        self.sessions.put(&self.seal.lookup("session", cookie_sha256), &value, "keep a session").await?;
        Ok(())
    }

    /// The live session of a cookie's SHA-256. A session entry that does
    /// not open (forged, or moved from another cookie's key) is no
    /// session: refused and counted.
    pub async fn session(&self, cookie_sha256: &str) -> Result<Option<SessionRecord>> {
        let key = self.seal.lookup("session", cookie_sha256);
        let Some(entry) = self.sessions.genuine_entry(&key, "read a session").await? else { return Ok(None) };
        let Ok(session) = decode::<SessionRecord>(&format!("{SESSIONS}/{key}"), &entry.value) else { return Ok(None) };
        Ok((session.expires_ms > now_ms()).then_some(session))
    }

    pub async fn close_session(&self, cookie_sha256: &str) -> Result<()> {
        let key = self.seal.lookup("session", cookie_sha256);
        self.sessions.remove(&key, "end a session").await
    }

    /// Ends every session of a resident. It reads every session of the
    /// cluster: for the rare disabling or change of password, not per request.
    pub async fn close_sessions_of(&self, resident: &ResidentName) -> Result<()> {
        for entry in self.sessions.latest().await? {
            if serde_json::from_slice::<SessionRecord>(&entry.value).is_ok_and(|s| &s.resident == resident) {
                self.sessions.remove(&entry.key, "end a session").await?;
            }
        }
        Ok(())
    }

    /// Records whose API token (by its SHA-256, hex) this is, under a
    /// keyed hash of that SHA-256.
    pub async fn index_token(&self, token_sha256: &str, resident: &ResidentName) -> Result<()> {
        let key = self.seal.lookup("token", token_sha256);
        self.tokens.put(&key, resident.as_str().as_bytes(), "index an API token").await?;
        Ok(())
    }

    pub async fn unindex_token(&self, token_sha256: &str) -> Result<()> {
        let key = self.seal.lookup("token", token_sha256);
        self.tokens.remove(&key, "forget an API token").await
    }

    /// The resident an API token was made for, by its SHA-256 (hex); an
    /// entry that does not open names nobody (refused and counted).
    pub async fn token_owner(&self, token_sha256: &str) -> Result<Option<ResidentName>> {
        let key = self.seal.lookup("token", token_sha256);
        let Some(entry) = self.tokens.genuine_entry(&key, "read an API token").await? else { return Ok(None) };
        let named = std::str::from_utf8(&entry.value).ok().and_then(|name| name.parse::<ResidentName>().ok());
        if named.is_none() {
            refuse(&format!("{TOKENS}/{key}"), "does not name a resident");
        }
        Ok(named)
    }

    /// The keyed hash of the cluster's operator token, and whether NATS
    /// holds it as it is: an entry that does not open, or one older than
    /// the newest this node saw (an earlier token put back), is refused
    /// (counted), and the newest this node saw stands for it.
    async fn operator_token(&self) -> Result<(Option<String>, bool)> {
        let key = format!("{OPERATOR}/{OPERATOR_KEY}");
        let Some(entry) = self.operator.genuine_entry(OPERATOR_KEY, "read the operator's token").await? else {
            return Ok((self.newest_operator.value(), false));
        };
        let keyed = String::from_utf8_lossy(&entry.value).into_owned();
        if entry.written_ms < self.newest_operator.saw(entry.written_ms, Some(&keyed)) {
            refuse(&key, "older than an operator's token this node already saw: an earlier token put back");
            return Ok((self.newest_operator.value(), false));
        }
        Ok((Some(keyed), true))
    }

    /// Puts this node's operator token in the cluster unless the cluster
    /// holds one as it should: the newest this node saw, or else the
    /// token of this node's home (`local_sha256`).
    pub async fn settle_operator_token(&self, local_sha256: Option<&str>) -> Result<()> {
        let (newest, held) = self.operator_token().await?;
        if held {
            return Ok(());
        }
        let Some(keyed) = newest.or_else(|| local_sha256.map(|sha| self.seal.lookup("operator", sha))) else {
            return Ok(());
        };
        self.put_operator_token(&keyed).await
    }

    /// Whether `sha256` (hex) is the SHA-256 of the cluster's operator
    /// token, kept in NATS as a keyed hash (compared in constant time).
    pub async fn is_operator_token(&self, sha256: &str) -> Result<bool> {
        let Some(keyed) = self.operator_token().await?.0 else { return Ok(false) };
        let presented = self.seal.lookup("operator", sha256);
        Ok(same_secret(keyed.as_bytes(), presented.as_bytes()))
    }

    /// Makes the token whose SHA-256 (hex) this is the cluster's operator token.
    pub async fn set_operator_token_sha256(&self, sha256: &str) -> Result<()> {
        self.put_operator_token(&self.seal.lookup("operator", sha256)).await
    }

    async fn put_operator_token(&self, keyed: &str) -> Result<()> {
        let written_ms = self.newest_operator.next_ms();
        self.operator.put_at(OPERATOR_KEY, keyed.as_bytes(), written_ms, "keep the operator's token").await?;
        self.newest_operator.saw(written_ms, Some(keyed));
        Ok(())
    }
}

/// Read-only access for `domicile cluster status`.
pub struct Observer {
    nodes: Bucket,
    placement: Bucket,
    moves: Bucket,
}

impl Observer {
    pub async fn live_nodes(&self) -> Result<Vec<(NodeName, NodeRecord)>> {
        live_nodes(&self.nodes).await
    }

    pub async fn placements(&self) -> Result<Vec<Placement>> {
        placements(&self.placement).await
    }

    /// The moves under way, and those finished in the last hour.
    pub async fn moves(&self) -> Result<Vec<Move>> {
        moves::all(&self.moves).await
    }

    /// Whether the NATS server holds any node or placement at all, sealed
    /// with this key or not (another cluster's, or one whose key is lost):
    /// keys only, nothing opened.
    pub async fn holds_a_cluster(&self) -> Result<bool> {
        for bucket in [&self.nodes, &self.placement] {
            let what = format!("list the keys of {}", bucket.kv.name);
            let mut keys = bucket.kv.keys().await.map_err(|e| nats(&what, e))?;
            if futures::StreamExt::next(&mut keys).await.transpose().map_err(|e| nats(&what, e))?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Asks for a move of `resident` to `to` (the nodes carry it out), and
    /// waits until it is done or failed, `patience` at most.
    pub async fn move_resident(&self, resident: &ResidentName, to: &NodeName, patience: Duration) -> Result<Move> {
        if holder(&self.placement, resident).await?.is_none() {
            return Err(ClusterError::NotPlaced(resident.clone()));
        }
        if self.nodes.entry(to.as_str(), "read a node's heartbeat").await?.is_none() {
            return Err(ClusterError::NotLive(to.clone()));
        }
        let requested = moves::request(&self.moves, resident, to).await?;
        moves::wait_for(&self.moves, resident, Some(requested.record.requested_ms), &[], patience).await
    }
}

/// Entries read from NATS that this process refused since it started.
static REFUSED_ENTRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many entries read from NATS were refused (malformed, or naming
/// what they may not) since this process started.
pub fn refused_entries() -> u64 {
    REFUSED_ENTRIES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Refuses an entry read from NATS: it is logged (what was wrong, never
/// its content) and counted, and never acted on.
pub(crate) fn refuse(key: &str, detail: &str) -> ClusterError {
    REFUSED_ENTRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::warn!(key, detail, "refused an entry read from NATS");
    ClusterError::Corrupt { key: key.to_owned(), detail: detail.to_owned() }
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| refuse(key, &e.to_string()))
}

async fn live_nodes(nodes: &Bucket) -> Result<Vec<(NodeName, NodeRecord)>> {
    let mut live = Vec::new();
    for entry in nodes.latest().await? {
        let key = format!("{NODES}/{}", entry.key);
        let Ok(node) = entry.key.parse::<NodeName>() else {
            refuse(&key, "not a node's name");
            continue;
        };
        // One unreadable heartbeat does not hide the other nodes.
        let Ok(record) = decode::<NodeRecord>(&key, &entry.value) else { continue };
        if let Err(detail) = record.check() {
            refuse(&key, &detail);
            continue;
        }
        live.push((node, record));
    }
    Ok(live)
}

impl NodeRecord {
    /// Whether its address is a plain `http(s)://host:port` base URL, its
    /// peer listener a plain `host:port`, and its certificate's hash one.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        let plain = |authority: &str| {
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
            !authority.is_empty() && authority.len() <= 255 && authority.chars().all(allowed)
        };
        let rest = self.advertise.strip_prefix("http://").or_else(|| self.advertise.strip_prefix("https://"));
        if !plain(rest.map(|r| r.trim_end_matches('/')).unwrap_or_default()) {
            return Err("its address is not an http(s)://host:port URL".into());
        }
        if !plain(&self.peer) || !self.peer.contains(':') {
            return Err(
                "it names no peer listener as host:port (a node of an earlier version? upgrade every node)".into()
            );
        }
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if self.peer_certificate_sha256.len() != 64 || !self.peer_certificate_sha256.chars().all(hex) {
            return Err("its peer certificate's SHA-256 is not 64 lowercase hexadecimal digits".into());
        }
        Ok(())
    }

    /// The SHA-256 of its peer listener's certificate ([`Self::check`]ed).
    pub fn peer_certificate(&self) -> Option<[u8; 32]> {
        hex::decode(&self.peer_certificate_sha256).ok()?.try_into().ok()
    }
}

async fn holder(placement: &Bucket, resident: &ResidentName) -> Result<Option<Placement>> {
    const WHAT: &str = "read a placement";
    let entry = match placement.entry(resident.as_str(), WHAT).await {
        Ok(entry) => entry,
        // A forged placement (refused and counted) does not move the
        // resident: the last genuine one still holds.
        Err(ClusterError::Corrupt { .. }) => placement.newest_genuine(resident.as_str(), WHAT).await?,
        Err(e) => return Err(e),
    };
    let Some(entry) = entry else { return Ok(None) };
    let record: PlacementRecord = decode(&format!("{PLACEMENT}/{resident}"), &entry.value)?;
    Ok(Some(Placement { resident: resident.clone(), node: record.node, revision: entry.revision }))
}

/// Every resident's placement.
async fn placements(placement: &Bucket) -> Result<Vec<Placement>> {
    let mut all = Vec::new();
    let (mut entries, refused) = placement.latest_and_refused().await?;
    // A forged placement does not move a resident: the last genuine one holds.
    for key in refused {
        entries.extend(placement.newest_genuine(&key, "read a placement").await?);
    }
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    for entry in entries {
        let key = format!("{PLACEMENT}/{}", entry.key);
        let Ok(resident) = entry.key.parse::<ResidentName>() else {
            refuse(&key, "not a resident's name");
            continue;
        };
        let Ok(record) = decode::<PlacementRecord>(&key, &entry.value) else { continue };
        all.push(Placement { resident, node: record.node, revision: entry.revision });
    }
    Ok(all)
}
