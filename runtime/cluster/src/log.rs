//! Each resident's log of committed writes, in JetStream, from which any
//! node can rebuild their space.
//!
//! - The stream `DOMICILE_SPACES` has one subject per resident,
//!   `domicile.space.RESIDENT`. Each message is one write the holding node
//!   committed (the key changes the store computed, see
//!   `domicile_store::Shipper`), a snapshot of the whole space (its bytes
//!   in the object store `domicile-snapshots`, the message naming the
//!   object), or a claim (a node took the resident over). A record too big
//!   for one NATS message is kept in the object store too.
//! - Every message is published with the subject's last sequence as this
//!   node knows it (`Nats-Expected-Last-Subject-Sequence`). Once another
//!   node has taken a resident over (and published its claim), a write of
//!   the node that lost them fails: that is the fencing of writes.
//! - A write is acknowledged to the resident only once JetStream has
//!   acknowledged it (stored on as many servers as the stream's replicas).
//! - After a snapshot, the messages before it are purged, and the objects
//!   they named deleted: a rebuild reads one snapshot and the writes after.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use async_nats::jetstream::{self, object_store, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use domicile_store::{ResidentName, Shipper};
use tokio::io::AsyncReadExt;

use crate::{nats, ClusterError, NodeName, Result};

const STREAM: &str = "DOMICILE_SPACES";
const OBJECTS: &str = "domicile-snapshots";
const KIND: &str = "Domicile-Kind";
const OBJECT: &str = "Domicile-Object";
const NODE: &str = "Domicile-Node";
/// Records up to this size travel in the message itself (NATS refuses
/// messages over its max_payload, 1 MiB by default).
const INLINE_MAX: usize = 256 * 1024;

fn subject(resident: &ResidentName) -> String {
    format!("domicile.space.{resident}")
}

/// What a message of a resident's log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Write,
    Snapshot,
    Claim,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Write => "write",
            Kind::Snapshot => "snapshot",
            Kind::Claim => "claim",
        }
    }
}

/// A resident's space as their log holds it: rebuild it with
/// `Store::rebuild(resident, &snapshot, records, through)`.
#[derive(Debug)]
pub struct LogTail {
    pub snapshot: Vec<u8>,
    pub records: Vec<Vec<u8>>,
    /// The position of the log's last message.
    pub through: u64,
}

/// What [`SpaceLogs::scan`] read of a resident's log.
struct Scanned {
    /// The headers of the last snapshot, if the scan met one.
    snapshot: Option<HeaderMap>,
    /// The writes after that snapshot, or after the scan's start without one.
    records: Vec<(HeaderMap, Bytes)>,
    /// The position of the last message read.
    through: u64,
}

/// What this node shipped to the residents' logs since it started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shipped {
    pub writes: u64,
    pub snapshots: u64,
    pub bytes: u64,
    /// Time spent shipping, JetStream's acknowledgement included, summed.
    pub micros: u64,
    /// Writes JetStream did not take (NATS unreachable, a timeout).
    pub failures: u64,
    /// Writes refused because another node wrote the log since.
    pub fenced: u64,
}

#[derive(Debug, Default)]
struct ShippedCounters {
    writes: AtomicU64,
    snapshots: AtomicU64,
    bytes: AtomicU64,
    micros: AtomicU64,
    failures: AtomicU64,
    fenced: AtomicU64,
}

/// This node's writer and reader of residents' logs.
pub struct SpaceLogs {
    js: jetstream::Context,
    stream: stream::Stream,
    objects: object_store::ObjectStore,
    node: NodeName,
    runtime: tokio::runtime::Handle,
    /// The last position of each resident this node writes (the residents
    /// it holds), or `None` for a resident it lost: their writes are
    /// refused. A resident in neither state is being created or restored
    /// here: their writes wait for the snapshot shipped once placed.
    positions: Mutex<HashMap<ResidentName, Option<u64>>>,
    /// The objects each resident's log names, as far as this node wrote or
    /// read them: deleted after the next snapshot without listing the
    /// whole object store.
    objects_named: Mutex<HashMap<ResidentName, Vec<String>>>,
    /// Set when a write of this node was refused because another node
    /// wrote the log since (it took the resident over): this node should
    /// look at once at which residents it still holds.
    fenced: AtomicBool,
    shipped: ShippedCounters,
}

impl SpaceLogs {
    pub(crate) async fn open(js: &jetstream::Context, node: NodeName, replicas: usize) -> Result<SpaceLogs> {
        let config = stream::Config {
            name: STREAM.into(),
            subjects: vec!["domicile.space.*".into()],
            num_replicas: replicas,
            ..Default::default()
        };
        let stream =
            crate::when_ready("create the stream of residents' logs", || js.get_or_create_stream(config.clone()))
                .await?;
        let objects = crate::object_store(js, OBJECTS, replicas).await?;
        Ok(SpaceLogs {
            js: js.clone(),
            stream,
            objects,
            node,
            runtime: tokio::runtime::Handle::current(),
            positions: Mutex::default(),
            objects_named: Mutex::default(),
            fenced: AtomicBool::new(false),
            shipped: ShippedCounters::default(),
        })
    }

    fn positions(&self) -> std::sync::MutexGuard<'_, HashMap<ResidentName, Option<u64>>> {
        self.positions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The position of the last message of a resident's log (0: none).
    pub async fn last_position(&self, resident: &ResidentName) -> Result<u64> {
        match self.stream.get_last_raw_message_by_subject(&subject(resident)).await {
            Ok(message) => Ok(message.sequence),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(e) => Err(nats("read the end of a resident's log", e)),
        }
    }

    /// From now on this node writes `resident`'s log, which ends at
    /// `position` (it checked that its copy of the space is that state).
    pub fn write_from(&self, resident: &ResidentName, position: u64) {
        self.positions().insert(resident.clone(), Some(position));
    }

    /// This node no longer writes `resident`'s log (another holds them):
    /// their writes here are refused.
    pub fn stop_writing(&self, resident: &ResidentName) {
        self.positions().insert(resident.clone(), None);
    }

    pub fn writes(&self, resident: &ResidentName) -> bool {
        self.positions().get(resident).is_some_and(Option::is_some)
    }

    /// What this node shipped since it started.
    pub fn shipped(&self) -> Shipped {
        let c = &self.shipped;
        let read = |n: &AtomicU64| n.load(Ordering::Relaxed);
        Shipped {
            writes: read(&c.writes),
            snapshots: read(&c.snapshots),
            bytes: read(&c.bytes),
            micros: read(&c.micros),
            failures: read(&c.failures),
            fenced: read(&c.fenced),
        }
    }

    /// Whether a write of this node was fenced off since the last call:
    /// another node took one of its residents over.
    pub fn was_fenced(&self) -> bool {
        self.fenced.swap(false, Ordering::SeqCst)
    }

    /// Deletes a removed resident's log and snapshots.
    pub async fn forget(&self, resident: &ResidentName) -> Result<()> {
        self.positions().remove(resident);
        self.stream.purge().filter(subject(resident)).await.map_err(|e| nats("delete a resident's log", e))?;
        self.forget_objects(resident).await;
        Ok(())
    }

    /// Publishes the claim of a node taking `resident` over at the end of
    /// their log: from then on the node that held them cannot write it any
    /// more. That node may still be finishing writes it began before it
    /// lost them; each moves the log's end, and the claim is tried again
    /// after it.
    pub async fn claim(&self, resident: &ResidentName) -> Result<u64> {
        const ATTEMPTS: usize = 20;
        for _ in 0..ATTEMPTS {
            let last = self.last_position(resident).await?;
            match self.publish(resident, last, Kind::Claim, Bytes::new(), None).await {
                Ok(claimed) => {
                    self.write_from(resident, claimed);
                    return Ok(claimed);
                }
                Err(ClusterError::NotHolder { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(nats("claim a resident's log", format!("its end moved {ATTEMPTS} times in a row")))
    }

    /// Reads a resident's log: the last snapshot and the writes after it.
    /// `None` when the log has no snapshot (the space was never shipped).
    pub async fn read(&self, resident: &ResidentName) -> Result<Option<LogTail>> {
        let (whole, tail) = self.read_after(resident, 0).await?;
        Ok(whole.then_some(tail))
    }

    /// Reads what a resident's log has after `position`: the last snapshot
    /// since and the writes after it (`true`), or, without a snapshot since,
    /// the writes since, to apply to a copy rebuilt through `position`
    /// (`false`, the tail's snapshot empty).
    pub async fn read_after(&self, resident: &ResidentName, position: u64) -> Result<(bool, LogTail)> {
        let Scanned { snapshot, records, through } = self.scan(resident, position + 1).await?;
        let snapshot = match snapshot {
            Some(headers) => Some(self.object(object_name(&headers)?).await?),
            None => None,
        };
        let mut bytes = Vec::with_capacity(records.len());
        for (headers, payload) in records {
            bytes.push(match headers.get(OBJECT) {
                Some(name) => self.object(name.as_str()).await?,
                None => payload.to_vec(),
            });
        }
        let whole = snapshot.is_some();
        Ok((whole, LogTail { snapshot: snapshot.unwrap_or_default(), records: bytes, through: through.max(position) }))
    }

    /// The messages of a resident's log from `first` on.
    async fn scan(&self, resident: &ResidentName, first: u64) -> Result<Scanned> {
        let subject = subject(resident);
        let mut next = first;
        let mut snapshot: Option<HeaderMap> = None;
        let mut records: Vec<(HeaderMap, Bytes)> = Vec::new();
        let mut through = 0;
        loop {
            let message =
                match self.stream.raw_message_builder().sequence(next).next_by_subject(subject.clone()).send().await {
                    Ok(message) => message,
                    Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => break,
                    Err(e) => return Err(nats("read a resident's log", e)),
                };
            through = message.sequence;
            next = message.sequence + 1;
            if let Some(object) = message.headers.get(OBJECT) {
                self.name_object(resident, object.as_str());
            }
            match kind(&message.headers)? {
                Kind::Snapshot => {
                    snapshot = Some(message.headers);
                    records.clear();
                }
                Kind::Write => records.push((message.headers, message.payload)),
                Kind::Claim => {}
            }
        }
        Ok(Scanned { snapshot, records, through })
    }

    async fn object(&self, name: &str) -> Result<Vec<u8>> {
        let mut object = self.objects.get(name).await.map_err(|e| nats("fetch a snapshot", e))?;
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await.map_err(|e| nats("fetch a snapshot", e))?;
        Ok(bytes)
    }

    /// Publishes one message after `expected` (the subject's last
    /// sequence); `object` names the object holding its bytes, if any.
    async fn publish(
        &self,
        resident: &ResidentName,
        expected: u64,
        kind: Kind,
        payload: Bytes,
        object: Option<&str>,
    ) -> Result<u64> {
        let mut message = jetstream::message::PublishMessage::build()
            .payload(payload)
            .header(KIND, kind.as_str())
            .header(NODE, self.node.as_str())
            .expected_last_subject_sequence(expected);
        if let Some(object) = object {
            message = message.header(OBJECT, object);
        }
        let ack = self.js.send_publish(subject(resident), message).await.map_err(|e| nats("ship a write", e))?;
        match ack.await {
            Ok(ack) => Ok(ack.sequence),
            Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                self.stop_writing(resident);
                self.fenced.store(true, Ordering::SeqCst);
                self.shipped.fenced.fetch_add(1, Ordering::Relaxed);
                Err(ClusterError::NotHolder { resident: resident.clone() })
            }
            Err(e) => Err(nats("ship a write", e)),
        }
    }

    /// Publishes a write or a snapshot of a resident this node writes.
    async fn append(&self, resident: &ResidentName, kind: Kind, bytes: &[u8]) -> Result<Option<u64>> {
        let expected = match self.positions().get(resident) {
            Some(Some(position)) => *position,
            Some(None) => return Err(ClusterError::NotHolder { resident: resident.clone() }),
            None => return Ok(None),
        };
        let started = std::time::Instant::now();
        let appended = self.append_after(resident, expected, kind, bytes).await;
        let counters = &self.shipped;
        match &appended {
            Ok(_) => {
                let count = if kind == Kind::Snapshot { &counters.snapshots } else { &counters.writes };
                count.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                counters.micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
            Err(ClusterError::NotHolder { .. }) => {}
            Err(_) => {
                counters.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        appended.map(Some)
    }

    /// [`Self::append`]'s publishing, after the log's position `expected`.
    async fn append_after(&self, resident: &ResidentName, expected: u64, kind: Kind, bytes: &[u8]) -> Result<u64> {
        let object = (kind == Kind::Snapshot || bytes.len() > INLINE_MAX).then(|| {
            let mut random = [0u8; 12];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut random);
            format!("{resident}/{}-{}", kind.as_str(), hex::encode(random))
        });
        let payload = match &object {
            Some(name) => {
                self.name_object(resident, name);
                self.objects.put(name.as_str(), &mut &bytes[..]).await.map_err(|e| nats("keep a snapshot", e))?;
                Bytes::new()
            }
            None => Bytes::copy_from_slice(bytes),
        };
        let position = match self.publish(resident, expected, kind, payload, object.as_deref()).await {
            Ok(position) => position,
            Err(e) => {
                if let Some(name) = &object {
                    let _ = self.objects.delete(name).await;
                }
                return Err(e);
            }
        };
        self.write_from(resident, position);
        if kind == Kind::Snapshot {
            self.forget_before(resident, position, object.as_deref().unwrap_or_default()).await;
        }
        Ok(position)
    }

    /// After a snapshot: purges the messages before it and deletes the
    /// objects only they named. Best effort: what is left is read and
    /// skipped by a rebuild, and removed after the next snapshot.
    async fn forget_before(&self, resident: &ResidentName, snapshot: u64, keep: &str) {
        if let Err(e) = self.stream.purge().filter(subject(resident)).sequence(snapshot).await {
            tracing::warn!(%resident, error = %e, "could not purge a resident's log before its snapshot");
            return;
        }
        let named = self.objects_named.lock().unwrap_or_else(|p| p.into_inner()).remove(resident).unwrap_or_default();
        for name in named.iter().filter(|name| name.as_str() != keep) {
            let _ = self.objects.delete(name).await;
        }
        self.name_object(resident, keep);
    }

    fn name_object(&self, resident: &ResidentName, name: &str) {
        let mut named = self.objects_named.lock().unwrap_or_else(|p| p.into_inner());
        let names = named.entry(resident.clone()).or_default();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }

    /// Deletes every object of a removed resident (a listing of the whole
    /// object store: for the rare removal, not after each snapshot).
    async fn forget_objects(&self, resident: &ResidentName) {
        self.objects_named.lock().unwrap_or_else(|p| p.into_inner()).remove(resident);
        let Ok(mut listing) = self.objects.list().await else { return };
        let prefix = format!("{resident}/");
        while let Some(Ok(info)) = futures::StreamExt::next(&mut listing).await {
            if info.name.starts_with(&prefix) && !info.deleted {
                let _ = self.objects.delete(&info.name).await;
            }
        }
    }

    /// Runs a future from the store's synchronous write path.
    fn wait<T>(&self, future: impl Future<Output = Result<T>>) -> std::result::Result<T, String> {
        let result = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::CurrentThread) => {
                return Err("a write of a cluster node was made from a single-threaded runtime".into())
            }
            Ok(_) => tokio::task::block_in_place(|| self.runtime.block_on(future)),
            Err(_) => self.runtime.block_on(future),
        };
        result.map_err(|e| e.to_string())
    }
}

fn kind(headers: &HeaderMap) -> Result<Kind> {
    match headers.get(KIND).map(|v| v.as_str()) {
        Some("write") => Ok(Kind::Write),
        Some("snapshot") => Ok(Kind::Snapshot),
        Some("claim") => Ok(Kind::Claim),
        other => {
            Err(ClusterError::Corrupt { key: STREAM.into(), detail: format!("a message of unknown kind {other:?}") })
        }
    }
}

fn object_name(headers: &HeaderMap) -> Result<&str> {
    headers
        .get(OBJECT)
        .map(|v| v.as_str())
        .ok_or_else(|| ClusterError::Corrupt { key: STREAM.into(), detail: "a snapshot names no object".into() })
}

impl Shipper for SpaceLogs {
    fn ship(&self, resident: &ResidentName, record: &[u8]) -> std::result::Result<Option<u64>, String> {
        self.wait(self.append(resident, Kind::Write, record))
    }

    fn ship_snapshot(&self, resident: &ResidentName, snapshot: &[u8]) -> std::result::Result<Option<u64>, String> {
        self.wait(self.append(resident, Kind::Snapshot, snapshot))
    }
}
