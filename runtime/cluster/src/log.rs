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
//! - **Nothing in the log is readable in NATS**: the content of each
//!   write and snapshot is encrypted under the cluster's key, bound to the
//!   resident's subject (see [`crate::seal`]). A log the previous version
//!   wrote in clear starts again from an encrypted snapshot when its holder
//!   attaches it, which purges what came before.
//! - **Nothing in the log is believed on its own word.** Each message
//!   carries the SHA-256 of its (encrypted) bytes, the MAC of the message before it
//!   (the log is a chain) and its own MAC under the cluster's key over
//!   all of that and its subject, kind, node and object. A message that
//!   does not verify (garbage, forged, altered) is skipped, counted and
//!   logged, and never applied; it does not fence the holder either: its
//!   writes go on after it. A chain that breaks (a genuine message missing
//!   or altered between two others) refuses the rebuild, rather than
//!   rebuilding a space without one of its writes.
//! - **Nor is a log cut back.** A node's NATS credentials cannot delete a
//!   message (the JetStream API for it is not in a node's permissions), and
//!   a purge only ever removes a log's beginning: to cut a log back to an
//!   earlier state, one would purge the whole subject and publish its
//!   genuine messages again. Each message's MAC covers the time it was
//!   written, and one that NATS stored more than the replay window after
//!   that time is refused as a replay, as a bucket's value is
//!   ([`crate::seal`]): a log put back that way has no snapshot a rebuild
//!   believes, and the rebuild is refused rather than made from it. Within
//!   the window, a rebuild refuses a log that does not reach the message
//!   its holder last reported as its end ([`crate::log_ends`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use async_nats::jetstream::{self, object_store, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use domicile_store::{ResidentName, Shipper};
use tokio::io::AsyncReadExt;

use crate::log_ends::{LogEnd, LogEnds};
use crate::seal::Seal;
use crate::{nats, refuse, ClusterError, NodeName, Result};

pub(crate) const STREAM: &str = "DOMICILE_SPACES";
pub(crate) const SUBJECTS: &str = "domicile.space.*";
pub(crate) const OBJECTS: &str = "domicile-snapshots";
const KIND: &str = "Domicile-Kind";
const OBJECT: &str = "Domicile-Object";
const NODE: &str = "Domicile-Node";
const SHA256: &str = "Domicile-Sha256";
const PREV: &str = "Domicile-Prev";
const MAC: &str = "Domicile-Mac";
/// When the message was written (ms since the epoch, the node's clock);
/// absent in the messages of versions before logs were fenced against
/// replays.
const WRITTEN: &str = "Domicile-Written";
/// How the message's content is encrypted; absent in the previous
/// version's messages, whose content is in clear.
const CIPHER: &str = "Domicile-Cipher";
const CIPHER_V1: &str = "chacha20poly1305-v1";
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
    /// Some of it was written in clear by the previous version: the
    /// holder ships a snapshot, encrypted, which purges it.
    pub in_clear: bool,
}

/// What [`SpaceLogs::scan`] read of a resident's log: only messages
/// that verified.
struct Scanned {
    /// The headers of the last snapshot, if the scan met one.
    snapshot: Option<HeaderMap>,
    /// The writes after that snapshot, or after the scan's start without one.
    records: Vec<(HeaderMap, Bytes)>,
    /// The position of the last message read.
    through: u64,
    /// The MAC of the last message that verified, if any did.
    head: Option<[u8; 32]>,
    /// The MACs of the messages that verified and are in the chain.
    chain: Vec<[u8; 32]>,
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
    /// How far this node wrote or read each resident's log, with the MAC
    /// of the last message there that verified: the next message it
    /// writes after that position names it, and a read from there on
    /// checks the chain from it.
    heads: Mutex<HashMap<ResidentName, (u64, [u8; 32])>>,
    /// Set when a write of this node was refused because another node
    /// wrote the log since (it took the resident over): this node should
    /// look at once at which residents it still holds.
    fenced: AtomicBool,
    shipped: ShippedCounters,
    seal: std::sync::Arc<Seal>,
    /// Where the logs end, as their holders report it.
    ends: std::sync::Arc<LogEnds>,
    /// The residents this node holds whose log it found cut back and put
    /// back: their writes go on after it, but no rebuild believes the log
    /// until the holder ships a snapshot.
    tampered: Mutex<std::collections::BTreeSet<ResidentName>>,
}

impl SpaceLogs {
    pub(crate) async fn open(
        js: &jetstream::Context,
        node: NodeName,
        replicas: usize,
        seal: std::sync::Arc<Seal>,
        ends: LogEnds,
    ) -> Result<SpaceLogs> {
        let config = stream::Config {
            name: STREAM.into(),
            subjects: vec![SUBJECTS.into()],
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
            heads: Mutex::default(),
            fenced: AtomicBool::new(false),
            shipped: ShippedCounters::default(),
            seal,
            ends: std::sync::Arc::new(ends),
            tampered: Mutex::default(),
        })
    }

    fn tampered(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<ResidentName>> {
        self.tampered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The residents whose log this node found cut back and put back since
    /// the last call: the holder ships a snapshot of each, from which a
    /// rebuild starts again.
    pub fn take_tampered(&self) -> Vec<ResidentName> {
        std::mem::take(&mut *self.tampered()).into_iter().collect()
    }

    pub(crate) fn ends(&self) -> &std::sync::Arc<LogEnds> {
        &self.ends
    }

    fn positions(&self) -> std::sync::MutexGuard<'_, HashMap<ResidentName, Option<u64>>> {
        self.positions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn heads(&self) -> std::sync::MutexGuard<'_, HashMap<ResidentName, (u64, [u8; 32])>> {
        self.heads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The MAC of the last message that verified through `position`, if
    /// this node wrote or read the log that far.
    fn head_at(&self, resident: &ResidentName, position: u64) -> Option<[u8; 32]> {
        self.heads().get(resident).filter(|(through, _)| *through == position).map(|(_, head)| *head)
    }

    /// The MAC of the message of `resident`'s log at `position`, which
    /// this node's next message names: remembered, or read (a node that
    /// restarted with its copy up to date); all zeros for an empty log.
    async fn head(&self, resident: &ResidentName, position: u64) -> Result<[u8; 32]> {
        if position == 0 {
            return Ok([0; 32]);
        }
        if let Some(mac) = self.mac_at(resident, position).await? {
            return Ok(mac);
        }
        // Not a message of this node's: the last one that verifies, or, in
        // a log none of whose messages does (written before they were
        // sealed), a new chain.
        Ok(self.scan(resident, 1, None).await?.head.unwrap_or([0; 32]))
    }

    /// Whether the message at `position` of `resident`'s log is as this
    /// version writes them: it verifies (one written before messages were
    /// sealed does not), its content is encrypted (one written before
    /// contents were is in clear) and it says when it was written (one
    /// written before logs were fenced against replays does not). A log
    /// that ends otherwise starts again from a snapshot.
    pub async fn current_at(&self, resident: &ResidentName, position: u64) -> Result<bool> {
        let message = self.stream.get_raw_message(position).await.map_err(|e| nats("read a resident's log", e))?;
        Ok(message.subject.as_str() == subject(resident)
            && message.headers.get(CIPHER).is_some()
            && message.headers.get(WRITTEN).is_some()
            && self.verify(resident, &message).is_ok())
    }

    /// The MAC of the message at `position` of `resident`'s log, if it is
    /// one of theirs and verifies.
    async fn mac_at(&self, resident: &ResidentName, position: u64) -> Result<Option<[u8; 32]>> {
        if let Some(head) = self.head_at(resident, position) {
            return Ok(Some(head));
        }
        let message = self.stream.get_raw_message(position).await.map_err(|e| nats("read a resident's log", e))?;
        if message.subject.as_str() != subject(resident) {
            return Ok(None);
        }
        Ok(self.verify(resident, &message).ok())
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
        self.heads().remove(resident);
        self.ends.forget(resident).await?;
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
            match self.publish(resident, last, Kind::Claim, Bytes::new(), b"", None).await {
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
        // The chain is checked from what this node verified through
        // `position`, when it did (a copy it made).
        let after = if position == 0 { None } else { self.head_at(resident, position) };
        let Scanned { snapshot, records, through, head, chain } = self.scan(resident, position + 1, after).await?;
        self.check_reaches_reported_end(resident, position, &chain).await?;
        let mut in_clear = false;
        let snapshot = match snapshot {
            Some(headers) => Some(self.content(resident, &headers, Bytes::new(), &mut in_clear).await?),
            None => None,
        };
        let mut bytes = Vec::with_capacity(records.len());
        for (headers, payload) in records {
            bytes.push(self.content(resident, &headers, payload, &mut in_clear).await?);
        }
        if let Some(head) = head {
            self.heads().insert(resident.clone(), (through.max(position), head));
        }
        let whole = snapshot.is_some();
        let through = through.max(position);
        Ok((whole, LogTail { snapshot: snapshot.unwrap_or_default(), records: bytes, through, in_clear }))
    }

    /// Refuses a log read after `position` whose chain does not reach the
    /// message its holder last reported as its end: cut back, and put
    /// back (within the replay window, or it would not verify).
    async fn check_reaches_reported_end(
        &self,
        resident: &ResidentName,
        position: u64,
        chain: &[[u8; 32]],
    ) -> Result<()> {
        let Some(end) = self.ends.reported(resident).await? else { return Ok(()) };
        if (position > 0 && end.position <= position) || chain.contains(&end.mac) {
            return Ok(());
        }
        Err(refuse(
            &subject(resident),
            "the log ends before the message its holder last reported as its end: cut back and put back, or a write is missing; the resident's space is not rebuilt from it (restore it from an export, or wait for its holder)",
        ))
    }

    /// The messages of a resident's log from `first` on that verify; those
    /// that do not are skipped (refused, counted and logged). Each one's
    /// predecessor must be the one before it that verified (from `after`,
    /// the MAC of the message before `first`, when known): a chain that
    /// breaks is refused whole.
    async fn scan(&self, resident: &ResidentName, first: u64, after: Option<[u8; 32]>) -> Result<Scanned> {
        let subject = subject(resident);
        let mut next = first;
        let mut snapshot: Option<HeaderMap> = None;
        let mut records: Vec<(HeaderMap, Bytes)> = Vec::new();
        let mut through = 0;
        let mut head = after;
        let mut chain = Vec::new();
        // Once a message says when it was written, every later one does: a
        // message without it after one with it is the previous version's,
        // put back.
        let mut dated = false;
        loop {
            let message =
                match self.stream.raw_message_builder().sequence(next).next_by_subject(subject.clone()).send().await {
                    Ok(message) => message,
                    Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => break,
                    Err(e) => return Err(nats("read a resident's log", e)),
                };
            through = message.sequence;
            next = message.sequence + 1;
            let Ok(mac) = self.verify(resident, &message) else { continue };
            if message.headers.get(WRITTEN).is_some() {
                dated = true;
            } else if dated {
                refuse(
                    &format!("{subject}@{}", message.sequence),
                    "a message of the previous version after this version's: put back, skipped",
                );
                continue;
            }
            let inline_ok = message.headers.get(OBJECT).is_some()
                || sha256_hex(&message.payload) == header(&message.headers, SHA256);
            if !inline_ok {
                refuse(&format!("{subject}@{}", message.sequence), "its bytes do not have the SHA-256 it states");
                continue;
            }
            if let Some(expected) = head {
                if header(&message.headers, PREV) != hex::encode(expected) {
                    return Err(refuse(
                        &format!("{subject}@{}", message.sequence),
                        "the log's chain is broken before this message: a write is missing or was altered; restore the resident from an export",
                    ));
                }
            }
            head = Some(mac);
            chain.push(mac);
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
        Ok(Scanned { snapshot, records, through, head, chain })
    }

    /// The MAC of a message of `resident`'s log, over its subject, kind,
    /// node, object, SHA-256, predecessor and, when it says them, cipher
    /// (so that it cannot be taken off, nor put on a message in clear) and
    /// time of writing (labelled: it cannot pass for a cipher).
    fn mac(&self, resident: &ResidentName, headers: &HeaderMap) -> [u8; 32] {
        let subject = subject(resident);
        let mut parts = vec![
            subject.as_str(),
            header(headers, KIND),
            header(headers, NODE),
            header(headers, OBJECT),
            header(headers, SHA256),
            header(headers, PREV),
        ];
        if let Some(cipher) = headers.get(CIPHER) {
            parts.push(cipher.as_str());
        }
        if let Some(written) = headers.get(WRITTEN) {
            parts.extend(["written", written.as_str()]);
        }
        self.seal.log_mac(&parts.iter().map(|p| p.as_bytes()).collect::<Vec<_>>())
    }

    /// The message's MAC if it verifies, and NATS stored it within the
    /// replay window of its writing; refused (counted, logged) if not.
    fn verify(
        &self,
        resident: &ResidentName,
        message: &async_nats::jetstream::message::StreamMessage,
    ) -> Result<[u8; 32]> {
        let headers = &message.headers;
        // Named only when refused: a scan verifies every message it reads.
        let at = || format!("{}@{}", subject(resident), message.sequence);
        let mac = self.mac(resident, headers);
        let stated = hex::decode(header(headers, MAC)).unwrap_or_default();
        let written = headers.get(WRITTEN).map(|w| w.as_str().parse::<u64>());
        if !(crate::same_secret(&stated, &mac)
            && kind(headers).is_ok()
            && header(headers, NODE).parse::<NodeName>().is_ok()
            && headers.get(CIPHER).is_none_or(|c| c.as_str() == CIPHER_V1)
            && written.as_ref().is_none_or(Result::is_ok))
        {
            return Err(refuse(&at(), "not written by a node of this cluster, or altered since: skipped"));
        }
        if let Some(Ok(written_ms)) = written {
            if self.seal.replayed(written_ms, crate::bucket::ms(message.time)) {
                return Err(refuse(&at(), crate::seal::REPLAYED));
            }
        }
        Ok(mac)
    }

    /// A verified message's content: its bytes inline, or its object's,
    /// checked against the SHA-256 the message states, then decrypted.
    /// Content the previous version wrote in clear is taken as it is, and
    /// sets `in_clear`.
    async fn content(
        &self,
        resident: &ResidentName,
        headers: &HeaderMap,
        payload: Bytes,
        in_clear: &mut bool,
    ) -> Result<Vec<u8>> {
        let subject = subject(resident);
        let stored = match headers.get(OBJECT) {
            None => payload.to_vec(),
            Some(name) => {
                let bytes = self.object(name.as_str()).await?;
                if sha256_hex(&bytes) != header(headers, SHA256) {
                    return Err(refuse(
                        &format!("{subject}/{}", name.as_str()),
                        "the object's bytes are not those its message states",
                    ));
                }
                bytes
            }
        };
        if headers.get(CIPHER).is_none() {
            *in_clear = true;
            return Ok(stored);
        }
        self.seal.decrypt_content(&subject, &stored).ok_or_else(|| {
            refuse(&subject, "a message's content does not decrypt under the cluster's key though its MAC verifies")
        })
    }

    async fn object(&self, name: &str) -> Result<Vec<u8>> {
        let mut object = self.objects.get(name).await.map_err(|e| nats("fetch a snapshot", e))?;
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await.map_err(|e| nats("fetch a snapshot", e))?;
        Ok(bytes)
    }

    /// Publishes one message after `expected` (the subject's last
    /// sequence), sealed and chained to the message at `expected`;
    /// `stored` is its bytes as stored, encrypted (in `payload`, or in the
    /// object `object`).
    /// Messages after `expected` that do not verify fence nothing: the
    /// message goes after them (a few times at most).
    async fn publish(
        &self,
        resident: &ResidentName,
        expected: u64,
        kind: Kind,
        payload: Bytes,
        stored: &[u8],
        object: Option<&str>,
    ) -> Result<u64> {
        const SKIPS: usize = 5;
        let mut headers = HeaderMap::new();
        headers.insert(KIND, kind.as_str());
        headers.insert(NODE, self.node.as_str());
        if let Some(object) = object {
            headers.insert(OBJECT, object);
        }
        headers.insert(SHA256, sha256_hex(stored).as_str());
        headers.insert(CIPHER, CIPHER_V1);
        let prev = self.head(resident, expected).await?;
        headers.insert(PREV, hex::encode(prev).as_str());
        headers.insert(WRITTEN, crate::now_ms().to_string().as_str());
        let mac = self.mac(resident, &headers);
        headers.insert(MAC, hex::encode(mac).as_str());
        let mut after = expected;
        for _ in 0..=SKIPS {
            let message = jetstream::message::PublishMessage::build()
                .payload(payload.clone())
                .headers(headers.clone())
                .expected_last_subject_sequence(after);
            let ack = self.js.send_publish(subject(resident), message).await.map_err(|e| nats("ship a write", e))?;
            match ack.await {
                Ok(ack) => {
                    self.heads().insert(resident.clone(), (ack.sequence, mac));
                    self.ends.wrote(resident, LogEnd { position: ack.sequence, mac });
                    return Ok(ack.sequence);
                }
                Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                    // Another node took the resident over (its messages
                    // verify and continue the chain from this node's last),
                    // or someone else wrote on the subject: messages that
                    // do not verify, or genuine ones that do not continue
                    // the chain (the log cut back and put back).
                    let last = self.last_position(resident).await?;
                    if last > after {
                        match self.scan(resident, after + 1, Some(prev)).await {
                            Ok(scanned) if scanned.chain.is_empty() => {
                                after = last;
                                continue;
                            }
                            Err(ClusterError::Corrupt { .. }) => {
                                self.tampered().insert(resident.clone());
                                after = last;
                                continue;
                            }
                            Ok(_) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    self.stop_writing(resident);
                    self.fenced.store(true, Ordering::SeqCst);
                    self.shipped.fenced.fetch_add(1, Ordering::Relaxed);
                    return Err(ClusterError::NotHolder { resident: resident.clone() });
                }
                Err(e) => return Err(nats("ship a write", e)),
            }
        }
        Err(nats("ship a write", format!("messages that do not verify keep coming after position {expected}")))
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
        let stored = Bytes::from(self.seal.encrypt_content(&subject(resident), bytes));
        let payload = match &object {
            Some(name) => {
                self.name_object(resident, name);
                self.objects.put(name.as_str(), &mut &stored[..]).await.map_err(|e| nats("keep a snapshot", e))?;
                Bytes::new()
            }
            None => stored.clone(),
        };
        let position = match self.publish(resident, expected, kind, payload, &stored, object.as_deref()).await {
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
            // Reported before what it replaces is purged: a report lagging
            // behind would name a message no longer there.
            let reported = match self.head_at(resident, position) {
                Some(mac) => self.ends.report(resident, LogEnd { position, mac }).await,
                None => Err(nats("report where a resident's log ends", "its snapshot's MAC is not known")),
            };
            match reported {
                Ok(()) => self.forget_before(resident, position, object.as_deref().unwrap_or_default()).await,
                Err(e) => {
                    tracing::warn!(%resident, error = %e, "the log before a snapshot is kept: its end could not be reported")
                }
            }
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

    /// Learns which objects the residents' logs name, from one listing of
    /// the object store: a node that starts knows none of those written
    /// before, and the next snapshot of each resident it holds deletes
    /// them, the previous version's snapshots in clear among them. Best
    /// effort: an entry of the listing that is not an object's (forged)
    /// is skipped, and a listing that fails leaves those objects to a
    /// later start.
    pub async fn learn_objects(&self) {
        let mut listing = match self.objects.list().await {
            Ok(listing) => listing,
            Err(e) => return tracing::warn!(error = %e, "could not list the snapshots to delete the stale ones"),
        };
        while let Some(info) = futures::StreamExt::next(&mut listing).await {
            let Ok(info) = info else { continue };
            let resident = info.name.split_once('/').and_then(|(r, _)| r.parse::<ResidentName>().ok());
            if let (Some(resident), false) = (resident, info.deleted) {
                self.name_object(&resident, &info.name);
            }
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

/// A header's value, or the empty string.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map_or("", |v| v.as_str())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
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

impl Shipper for SpaceLogs {
    fn ship(&self, resident: &ResidentName, record: &[u8]) -> std::result::Result<Option<u64>, String> {
        self.wait(self.append(resident, Kind::Write, record))
    }

    fn ship_snapshot(&self, resident: &ResidentName, snapshot: &[u8]) -> std::result::Result<Option<u64>, String> {
        self.wait(self.append(resident, Kind::Snapshot, snapshot))
    }
}
