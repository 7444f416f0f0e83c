//! Copies of a space's writes for the cluster, and spaces rebuilt from them.
//!
//! In a cluster every resident's committed writes are copied to a log that
//! outlives the node (JetStream, see `domicile-cluster`), so that another
//! node can rebuild the space when this one is lost. The store knows
//! nothing of NATS: it hands each write, as the list of key changes
//! [`crate::journal`] already computes, to a [`Shipper`], and acknowledges
//! the write only once the shipper has. A write the shipper refuses (the
//! cluster is unreachable, or another node now holds the resident) is not
//! made. Bulk changes (an import, a restore) are shipped as a whole
//! snapshot of the space instead.
//!
//! A record is the bytes of [`encode_ops`]; a snapshot is the same
//! encoding of every key of every tree. Both rebuild a space by applying
//! them in order: every change is absolute, so the result is the state the
//! last record describes.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::journal::{decode_ops, encode_ops, Op, META};
use crate::{ResidentName, ResidentSpace, Result, StoreError};

/// Where the position of the last shipped record is kept in `meta`: a
/// space whose position differs from the log's last is stale.
const SHIPPED_KEY: &str = "cluster.shipped-through";

/// Takes copies of a store's writes for the cluster.
pub trait Shipper: Send + Sync {
    /// Keeps one write of `resident`'s (bytes of key changes); returns its
    /// position in the resident's log. An `Err` says why it was not kept:
    /// the write is then not made. `Ok(None)`: the resident has no log on
    /// this node yet (being created or restored here, not yet placed): the
    /// write is made, and the space is shipped whole once they are placed.
    fn ship(&self, resident: &ResidentName, record: &[u8]) -> std::result::Result<Option<u64>, String>;

    /// Keeps the whole space of `resident`, replacing every earlier record;
    /// returns its position in the log (`None` as for [`ship`](Self::ship)).
    fn ship_snapshot(&self, resident: &ResidentName, snapshot: &[u8]) -> std::result::Result<Option<u64>, String>;
}

/// The shipper of a store, once it has one (a node joining a cluster sets
/// it after opening its home).
pub(crate) type ShipperSlot = Arc<std::sync::OnceLock<Arc<dyn Shipper>>>;

/// The change that records how far a space was shipped.
pub(crate) fn shipped_op(position: u64) -> Op {
    Op { tree: META, key: SHIPPED_KEY.as_bytes().to_vec(), value: Some(position.to_be_bytes().to_vec()) }
}

impl ResidentSpace {
    /// Sets the usage counters to the documents' count, when they differ.
    /// A space rebuilt from a log needs it when its node was lost while an
    /// import was being published: a write shipped meanwhile carried
    /// counters that counted part of the import, whose documents travel
    /// only with the snapshot that was never shipped.
    fn recount_usage(&self) -> Result<()> {
        let counted = self.counted_usage()?;
        if counted != self.usage()? {
            tracing::warn!("the usage counters of a rebuilt space were recounted");
            let value = Some(crate::encode(&counted));
            self.apply(&[Op { tree: META, key: crate::docs::USAGE_KEY.as_bytes().to_vec(), value }])?;
        }
        Ok(())
    }

    fn shipper(&self) -> Option<&Arc<dyn Shipper>> {
        self.open.shipper.get()
    }

    /// Ships the writes kept for later, then `ops`, as one record; the
    /// record's position, or `None` outside a cluster. When a snapshot is
    /// due (one could not be shipped), it goes first. Called with the
    /// space's write lock held.
    pub(crate) fn ship(&self, ops: &[Op]) -> Result<Option<u64>> {
        let Some(shipper) = self.shipper() else { return Ok(None) };
        if self.open.snapshot_due.load(Ordering::SeqCst) && !self.ship_whole(shipper)? {
            // Not placed yet: all of it goes in the snapshot, later.
            return Ok(None);
        }
        let mut unshipped = self.open.unshipped.lock().unwrap_or_else(|p| p.into_inner());
        let mut record = encode_ops(&unshipped);
        record.extend(encode_ops(ops));
        let position = shipper.ship(&self.name, &record).map_err(StoreError::NotShipped)?;
        unshipped.clear();
        if position.is_none() {
            self.open.snapshot_due.store(true, Ordering::SeqCst);
        }
        Ok(position)
    }

    /// Keeps the changes of a write applied without shipping, for the next
    /// record. Called with the space's write lock held.
    pub(crate) fn keep_unshipped(&self, ops: Vec<Op>) {
        if self.shipper().is_some() {
            self.open.unshipped.lock().unwrap_or_else(|p| p.into_inner()).extend(ops);
        }
    }

    /// Ships what was applied without shipping (reads' audit entries, app
    /// logs), if anything. Part of [`flush`](Self::flush).
    pub(crate) fn ship_pending(&self) -> Result<()> {
        if self.shipper().is_none()
            || (self.open.unshipped.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
                && !self.open.snapshot_due.load(Ordering::SeqCst))
        {
            return Ok(());
        }
        let _writing = self.writing();
        if let Some(position) = self.ship(&[])? {
            self.apply(&[shipped_op(position)])?;
        }
        Ok(())
    }

    /// [`ship_snapshot`](Self::ship_snapshot) where the space was just made
    /// by a bulk change (created, restored): before the node has placed the
    /// resident it cannot ship, and the snapshot stays due (the node ships
    /// it when it places them), so a failure here is not the caller's.
    pub(crate) fn ship_snapshot_when_placed(&self) {
        if let Err(e) = self.ship_snapshot() {
            tracing::debug!(error = %e, "the space is not in the cluster's log yet");
        }
    }

    /// Ships the whole space: after a bulk change (an import, a restore),
    /// or when a node starts holding a resident. Does nothing outside a
    /// cluster. On failure the change stays on this node, and the snapshot
    /// goes with the space's next write.
    pub fn ship_snapshot(&self) -> Result<()> {
        let Some(shipper) = self.shipper() else { return Ok(()) };
        let _writing = self.writing();
        self.open.snapshot_due.store(true, Ordering::SeqCst);
        self.ship_whole(shipper).map(drop).map_err(|e| match e {
            StoreError::NotShipped(why) => StoreError::SnapshotNotShipped(why),
            other => other,
        })
    }

    /// Ships the whole space; false when the resident has no log on this
    /// node yet (the snapshot stays due). Called with the write lock held.
    fn ship_whole(&self, shipper: &Arc<dyn Shipper>) -> Result<bool> {
        let snapshot = self.snapshot()?;
        let position = shipper.ship_snapshot(&self.name, &snapshot).map_err(StoreError::NotShipped)?;
        // Shipped, or to be shipped in a later snapshot: nothing is left
        // that only a record would carry.
        self.open.unshipped.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let Some(position) = position else { return Ok(false) };
        self.apply(&[shipped_op(position)])?;
        self.sync()?;
        self.open.snapshot_due.store(false, Ordering::SeqCst);
        Ok(true)
    }

    /// Every key of every tree, as one record of changes.
    fn snapshot(&self) -> Result<Vec<u8>> {
        let mut ops = Vec::new();
        for id in crate::journal::TREE_IDS {
            for item in self.tree_of(id)?.iter() {
                let (key, value) = item?;
                if id == META && key == SHIPPED_KEY.as_bytes() {
                    continue;
                }
                ops.push(Op { tree: id, key: key.to_vec(), value: Some(value.to_vec()) });
            }
        }
        Ok(encode_ops(&ops))
    }

    /// The position in the cluster's log of the last write this space
    /// holds (0: never shipped).
    pub fn shipped_through(&self) -> Result<u64> {
        Ok(self.meta.get(SHIPPED_KEY)?.map_or(0, |v| crate::docs::decode_seq(Some(&v))))
    }
}

impl crate::Store {
    /// Hands every write of this store's spaces to `shipper` from now on.
    /// Set once, when the node joins its cluster, before it serves anyone.
    pub fn ship_to(&self, shipper: Arc<dyn Shipper>) -> Result<()> {
        self.shipper_slot()
            .set(shipper)
            .map_err(|_| StoreError::Invalid("this store already ships its writes to a cluster".into()))
    }

    /// Brings `name`'s space, rebuilt from a log through an earlier
    /// position, up to `through` with the records shipped since, in order
    /// (a node taking a resident over from a copy it made beforehand).
    pub fn catch_up(
        &self,
        name: &ResidentName,
        records: impl IntoIterator<Item = Vec<u8>>,
        through: u64,
    ) -> Result<()> {
        let space = self.resident(name)?;
        let _writing = space.writing();
        for record in records {
            space.apply(&decode_ops(&record)?)?;
        }
        space.apply(&[shipped_op(through)])?;
        space.recount_usage()
    }

    /// Rebuilds `name`'s space from a snapshot and the records shipped
    /// after it (in order), replacing the copy this store has, if any;
    /// `through` is the position of the last. Refused while the local copy
    /// is in use.
    pub fn rebuild(
        &self,
        name: &ResidentName,
        snapshot: &[u8],
        records: impl IntoIterator<Item = Vec<u8>>,
        through: u64,
    ) -> Result<ResidentSpace> {
        if self.has_resident(name) {
            self.remove_resident(name)?;
        }
        let space = self.begin_incoming(name)?;
        let built = (|| {
            space.apply(&decode_ops(snapshot)?)?;
            for record in records {
                space.apply(&decode_ops(&record)?)?;
            }
            space.apply(&[shipped_op(through)])?;
            space.recount_usage()
        })();
        match built {
            Ok(()) => self.publish_incoming(space),
            Err(e) => {
                let _ = self.discard_incoming(space);
                Err(e)
            }
        }
    }
}
