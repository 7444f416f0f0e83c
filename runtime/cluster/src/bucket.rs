//! A JetStream key-value bucket whose every value is sealed with the
//! cluster's key (see [`crate::seal`]): what this node writes is sealed
//! for its bucket and key, and what it reads is opened, or refused,
//! logged and counted, before anything acts on it. A genuine value put
//! back is refused too: when NATS stored it long after it was sealed, or
//! when this node saw a newer one or the key's removal ([`Recent`]).

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::jetstream::kv;

use crate::recent::{Recent, Version};
use crate::seal::{Opened, Seal};
use crate::{nats, now_ms, refuse, Result};

/// Why a value sealed before one this node saw, and stored after it, is refused.
const PUT_BACK: &str = "an earlier value put back: this node saw a newer one, or the key removed, since it was sealed (a clock far behind the other nodes' would look the same: check them)";

/// A bucket of sealed values.
#[derive(Clone)]
pub(crate) struct Bucket {
    pub(crate) kv: kv::Store,
    seal: Arc<Seal>,
    recent: Arc<Recent>,
}

/// A value that opened, with its key's revision and when it was written.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) value: Vec<u8>,
    pub(crate) revision: u64,
    pub(crate) written_ms: u64,
    /// Written by the previous version, in clear (see [`Bucket::encrypt_in_clear`]).
    pub(crate) in_clear: bool,
}

impl Bucket {
    /// A bucket whose recent changes this node remembers in memory only
    /// (for a command that reads the cluster once).
    pub(crate) fn new(kv: kv::Store, seal: Arc<Seal>) -> Bucket {
        Bucket::remembering(kv, seal, None)
    }

    /// A bucket whose recent changes this node remembers in the file
    /// `kept_in` too, across a restart.
    pub(crate) fn remembering(kv: kv::Store, seal: Arc<Seal>, kept_in: Option<std::path::PathBuf>) -> Bucket {
        let recent = Arc::new(Recent::open(seal.replay_window_ms(), kept_in));
        Bucket { kv, seal, recent }
    }

    fn name(&self) -> &str {
        &self.kv.name
    }

    /// What this node remembers of the bucket's recent changes.
    pub(crate) fn memory(&self) -> HashMap<String, Version> {
        self.recent.memory()
    }

    /// Learns what another node remembers of the bucket's recent changes.
    pub(crate) fn learn(&self, memory: HashMap<String, Version>) -> usize {
        let taught = self.recent.learn(memory);
        self.recent.keep();
        taught
    }

    /// The value sealed under `key`, stored by NATS at `stored_ms`, when
    /// it is neither forged nor an earlier one put back; noted as seen.
    fn open_current(
        &self,
        key: &str,
        sealed: &[u8],
        revision: u64,
        stored_ms: u64,
    ) -> std::result::Result<Opened, &'static str> {
        let opened = self.seal.open_stored(self.name(), key, sealed, stored_ms)?;
        if self.recent.is_put_back(key, opened.written_ms, revision) {
            return Err(PUT_BACK);
        }
        self.recent.saw(key, opened.written_ms, revision);
        Ok(opened)
    }

    /// Follows every change of the bucket for as long as the returned task
    /// runs (from the last change of each key), so that this node knows
    /// the newest version of each key even where it did not read or write
    /// it, and a genuine earlier value put back is refused ([`Recent`]).
    /// A watch that ends (NATS went away) is started again.
    pub(crate) fn follow_changes(&self) -> tokio::task::JoinHandle<()> {
        let bucket = self.clone();
        tokio::spawn(async move {
            loop {
                match bucket.kv.watch_with_history(">").await {
                    Ok(mut watch) => {
                        // What was seen is written within a second, even
                        // when no change follows.
                        let mut keep = tokio::time::interval(std::time::Duration::from_secs(1));
                        loop {
                            let change = tokio::select! {
                                change = futures::StreamExt::next(&mut watch) => change,
                                _ = keep.tick() => {
                                    bucket.recent.keep();
                                    continue;
                                }
                            };
                            match change {
                                Some(Ok(change)) => bucket.note(&change),
                                Some(Err(e)) => {
                                    tracing::warn!(bucket = %bucket.name(), error = %e, "following a bucket's changes");
                                    break;
                                }
                                None => break,
                            }
                        }
                    }
                    Err(e) => tracing::warn!(bucket = %bucket.name(), error = %e, "cannot follow a bucket's changes"),
                }
                bucket.recent.keep();
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        })
    }

    /// Notes one change seen by [`Self::follow_changes`]. A value that does
    /// not open is not counted here: whoever reads it refuses it.
    fn note(&self, change: &kv::Entry) {
        match change.operation {
            kv::Operation::Put => {
                if let Ok(opened) = self.seal.open_stored(self.name(), &change.key, &change.value, ms(change.created)) {
                    self.recent.saw(&change.key, opened.written_ms, change.revision);
                }
            }
            kv::Operation::Delete | kv::Operation::Purge => {
                self.recent.saw_removed(&change.key, ms(change.created), Some(change.revision));
            }
        }
        self.recent.keep();
    }

    /// Opens a value read under `key` that NATS stored at `stored`, or
    /// refuses it (logged and counted).
    pub(crate) fn open(&self, key: &str, sealed: &[u8], revision: u64, stored: time::OffsetDateTime) -> Result<Entry> {
        match self.open_current(key, sealed, revision, ms(stored)) {
            Ok(opened) => Ok(Entry {
                key: key.to_owned(),
                value: opened.value,
                revision,
                written_ms: opened.written_ms,
                in_clear: opened.in_clear,
            }),
            Err(why) => Err(refuse(&format!("{}/{key}", self.name()), why)),
        }
    }

    /// The value under `key` (its last put), opened; `Ok(None)` when there
    /// is none, `Err(Corrupt)` when it does not open.
    pub(crate) async fn entry(&self, key: &str, what: &str) -> Result<Option<Entry>> {
        let entry = self.kv.entry(key).await.map_err(|e| nats(what, e))?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                self.open(key, &entry.value, entry.revision, entry.created).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// [`Self::entry`], with a value that does not open taken for none (it
    /// was refused and counted): for what a node can do without.
    pub(crate) async fn genuine_entry(&self, key: &str, what: &str) -> Result<Option<Entry>> {
        match self.entry(key, what).await {
            Err(crate::ClusterError::Corrupt { .. }) => Ok(None),
            read => read,
        }
    }

    /// The newest value of `key` that opens, for a key whose last value
    /// does not (refused): a forged value put over a genuine one hides
    /// nothing the bucket's history still has. Its revision is the key's
    /// last (the forgery's), so that a compare-and-set replaces the
    /// forgery. `None` when the history has none, or a removal since.
    pub(crate) async fn newest_genuine(&self, key: &str, what: &str) -> Result<Option<Entry>> {
        let last = self.kv.entry(key).await.map_err(|e| nats(what, e))?.map(|e| e.revision);
        let mut history = self.kv.history(key).await.map_err(|e| nats(what, e))?;
        let mut genuine = None;
        while let Some(entry) = futures::StreamExt::next(&mut history).await {
            let entry = entry.map_err(|e| nats(what, e))?;
            if entry.operation != kv::Operation::Put {
                genuine = None;
            } else if let Ok(opened) = self.open_current(key, &entry.value, entry.revision, ms(entry.created)) {
                genuine = Some(Entry {
                    key: key.to_owned(),
                    value: opened.value,
                    revision: entry.revision,
                    written_ms: opened.written_ms,
                    in_clear: opened.in_clear,
                });
            }
        }
        Ok(genuine.map(|genuine| Entry { revision: last.unwrap_or(genuine.revision), ..genuine }))
    }

    /// The revision of `key`'s last value when it is one that does not
    /// open (refused: forged, or written before values were sealed), for
    /// a node to put what it holds itself over it by compare-and-set.
    pub(crate) async fn refused_revision(&self, key: &str, what: &str) -> Result<Option<u64>> {
        let entry = self.kv.entry(key).await.map_err(|e| nats(what, e))?;
        Ok(entry
            .filter(|e| {
                e.operation == kv::Operation::Put
                    && self.open_current(key, &e.value, e.revision, ms(e.created)).is_err()
            })
            .map(|e| e.revision))
    }

    pub(crate) async fn put(&self, key: &str, value: &[u8], what: &str) -> Result<u64> {
        self.put_at(key, value, now_ms(), what).await
    }

    /// [`Self::put`], saying it was written at `written_ms`.
    pub(crate) async fn put_at(&self, key: &str, value: &[u8], written_ms: u64, what: &str) -> Result<u64> {
        let (sealed, written_ms) = self.seal_new(key, value, written_ms);
        let revision = self.kv.put(key, sealed.into()).await.map_err(|e| nats(what, e))?;
        self.recent.saw(key, written_ms, revision);
        Ok(revision)
    }

    /// `value` sealed for `key` with a time no earlier than `written_ms`
    /// and later than any version of the key this node saw, and that time.
    fn seal_new(&self, key: &str, value: &[u8], written_ms: u64) -> (Vec<u8>, u64) {
        let written_ms = self.recent.next_ms(key, written_ms);
        (self.seal.seal(self.name(), key, value, written_ms), written_ms)
    }

    pub(crate) async fn create(&self, key: &str, value: &[u8]) -> std::result::Result<u64, kv::CreateError> {
        self.create_at(key, value, now_ms()).await
    }

    pub(crate) async fn update(
        &self,
        key: &str,
        value: &[u8],
        revision: u64,
    ) -> std::result::Result<u64, kv::UpdateError> {
        self.update_at(key, value, revision, now_ms()).await
    }

    /// [`Self::create`], saying it was written at `written_ms`.
    pub(crate) async fn create_at(
        &self,
        key: &str,
        value: &[u8],
        written_ms: u64,
    ) -> std::result::Result<u64, kv::CreateError> {
        let (sealed, written_ms) = self.seal_new(key, value, written_ms);
        let revision = self.kv.create(key, sealed.into()).await?;
        self.recent.saw(key, written_ms, revision);
        Ok(revision)
    }

    /// [`Self::update`], saying it was written at `written_ms`.
    pub(crate) async fn update_at(
        &self,
        key: &str,
        value: &[u8],
        revision: u64,
        written_ms: u64,
    ) -> std::result::Result<u64, kv::UpdateError> {
        let (sealed, written_ms) = self.seal_new(key, value, written_ms);
        let revision = self.kv.update(key, sealed.into(), revision).await?;
        self.recent.saw(key, written_ms, revision);
        Ok(revision)
    }

    /// Removes `key`: a value of it sealed before now, put back, is refused
    /// by this node at once, and by the others as they see the removal.
    pub(crate) async fn remove(&self, key: &str, what: &str) -> Result<()> {
        self.kv.purge(key).await.map_err(|e| nats(what, e))?;
        self.recent.saw_removed(key, now_ms(), None);
        self.recent.keep();
        Ok(())
    }

    /// [`Self::remove`], only if `key`'s last revision is `revision`.
    pub(crate) async fn remove_at(&self, key: &str, revision: u64) -> std::result::Result<(), kv::PurgeError> {
        self.kv.purge_expect_revision(key, Some(revision)).await?;
        self.recent.saw_removed(key, now_ms(), None);
        self.recent.keep();
        Ok(())
    }

    /// Puts again, encrypted, each last value the previous version wrote in
    /// clear (a compare-and-set: a value changed meanwhile is left to its
    /// writer, who encrypts it); returns how many. Stamped now: the value
    /// is this bucket's current one, and its old time would make it look
    /// replayed. The bucket's older history, where it keeps any, goes as
    /// new values push it out.
    pub(crate) async fn encrypt_in_clear(&self) -> Result<usize> {
        let mut encrypted = 0;
        for entry in self.latest().await?.into_iter().filter(|e| e.in_clear) {
            if self.update(&entry.key, &entry.value, entry.revision).await.is_ok() {
                encrypted += 1;
            }
        }
        Ok(encrypted)
    }

    /// Every key with its last value, opened, read in one pass over the
    /// bucket's stream, not one request per key (a node looks at every
    /// placement whenever the live nodes change). Removed keys, and values
    /// that do not open (refused and counted), are left out; in key order.
    pub(crate) async fn latest(&self) -> Result<Vec<Entry>> {
        Ok(self.latest_and_refused().await?.0)
    }

    /// [`Self::latest`], and the keys whose last value was refused.
    pub(crate) async fn latest_and_refused(&self) -> Result<(Vec<Entry>, Vec<String>)> {
        use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
        let store = &self.kv;
        let read = |e: &dyn std::fmt::Display| nats(&format!("read the bucket {}", store.name), e);
        let consumer = store
            .stream
            .create_consumer(OrderedConfig {
                filter_subject: format!("{}>", store.prefix),
                deliver_policy: DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(|e| read(&e))?;
        let (mut all, mut refused) = (Vec::new(), Vec::new());
        if consumer.cached_info().num_pending == 0 {
            return Ok((all, refused));
        }
        let mut messages = consumer.messages().await.map_err(|e| read(&e))?;
        while let Some(message) = futures::StreamExt::next(&mut messages).await {
            let message = message.map_err(|e| read(&e))?;
            let info = message.info().map_err(|e| read(&e))?;
            let (pending, revision, stored) = (info.pending, info.stream_sequence, info.published);
            // A removed key ends with a delete or purge marker.
            if message.headers.as_ref().and_then(|h| h.get("KV-Operation")).is_none() {
                let key = message.subject.as_str().trim_start_matches(store.prefix.as_str()).to_owned();
                match self.open(&key, &message.payload, revision, stored) {
                    Ok(entry) => all.push(entry),
                    Err(_) => refused.push(key),
                }
            }
            if pending == 0 {
                break;
            }
        }
        all.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((all, refused))
    }
}

/// A time NATS gave, in ms since the epoch (0 before it).
pub(crate) fn ms(time: time::OffsetDateTime) -> u64 {
    u64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}
