//! The store's directory: one sled database per resident, opened on
//! demand, a bounded number kept open while idle.
//!
//! sled keeps the list of a database's trees in one node that it rewrites
//! whenever a tree is created; with every resident's trees in one database
//! (domicile 0.1) the cost of one more resident grew with the number of
//! residents, and 2,000 empty ones took 4.9 GB. Here nothing a resident
//! does touches another's files, and the filesystem is the registry: a
//! resident exists when their directory is in `residents/`.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::{apps, ResidentName, ResidentSpace, Result, StoreError, Vocabulary, STAGING_PREFIX};

/// The trees of a resident's database (the names are the same in every
/// resident's database).
const TREES: [&str; 10] =
    ["docs", "index", "changes", "meta", "apps", "packages", "audit", "app-log", "outbox", "notifications"];

/// How the store keeps residents' databases open.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// Databases kept open after their last user let go; past it the
    /// least recently used one is closed. Databases in use are never
    /// closed, so this bounds what idle residents cost, not activity.
    pub idle_spaces: usize,
    /// sled's page cache of each open database, bytes.
    pub cache_bytes_per_space: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { idle_spaces: 64, cache_bytes_per_space: 4 << 20 }
    }
}

/// A home's store: residents' spaces, each its own sled database.
///
/// ```text
/// ROOT/lock              locked by the one process that has the store open
/// ROOT/residents/NAME/   the sled database of resident NAME
/// ROOT/incoming/NAME/    a space being built (a restore, an upgrade): moved
///                        into residents/ once complete, removed at the next
///                        open if a crash stopped it
/// ROOT/removing/         spaces being deleted: a deletion is one rename
///                        into here, then the files go
/// ROOT/wakes/NAME        when resident NAME's triggers need a look (see
///                        `crate::wakes`)
/// ```
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    root: PathBuf,
    /// Holds the store's lock until the last handle is dropped.
    _lock: File,
    vocabulary: Arc<Vocabulary>,
    app_cache: Arc<apps::AppCache>,
    options: StoreOptions,
    open: Mutex<OpenSpaces>,
    /// Residents whose database was closed after writes: see
    /// [`Store::take_closed_with_changes`].
    closed_with_changes: Arc<Mutex<std::collections::BTreeSet<ResidentName>>>,
    shipper: crate::shipping::ShipperSlot,
    wakes: Arc<crate::wakes::Wakes>,
    /// The residents as last listed; this process is the only one that
    /// adds or removes any (the store's lock), and forgets it when it does.
    listed: Mutex<Option<Arc<[ResidentName]>>>,
}

/// The databases this process has open.
#[derive(Default)]
struct OpenSpaces {
    /// Every open database, whoever holds it: a resident's database must be
    /// open at most once (sled locks it), so a second user gets the same.
    live: HashMap<ResidentName, Weak<OpenSpace>>,
    /// The most recently used, kept open while idle; front is oldest.
    recent: VecDeque<Arc<OpenSpace>>,
}

/// The open spaces, locked; spaces it stops keeping open are closed (which
/// flushes them) only once the lock is released.
struct Locked<'a> {
    // Dropped first: fields drop in declaration order.
    guard: MutexGuard<'a, OpenSpaces>,
    evicted: Vec<Arc<OpenSpace>>,
}

impl std::ops::Deref for Locked<'_> {
    type Target = OpenSpaces;
    fn deref(&self) -> &OpenSpaces {
        &self.guard
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut OpenSpaces {
        &mut self.guard
    }
}

/// One open resident database and its trees.
pub(crate) struct OpenSpace {
    name: ResidentName,
    pub(crate) db: sled::Db,
    trees: [sled::Tree; 10],
    /// The last number of the resident's sequence taken in this process
    /// (see `ResidentSpace::reserve_seqs_in_memory`).
    pub(crate) seq: std::sync::atomic::AtomicU64,
    /// Journaled writes (see [`crate::journal`]), the number of the next
    /// record, and the lock every read-modify-write of the space holds.
    pub(crate) journal: sled::Tree,
    pub(crate) journal_seq: std::sync::atomic::AtomicU64,
    pub(crate) writing: Mutex<()>,
    /// The sequence when the database was opened, and where to note that
    /// it closes with more.
    seq_at_open: u64,
    closed_with_changes: Arc<Mutex<std::collections::BTreeSet<ResidentName>>>,
    /// Where writes are copied in a cluster, and the changes applied but
    /// not yet copied (see [`crate::shipping`]).
    pub(crate) shipper: crate::shipping::ShipperSlot,
    pub(crate) unshipped: Mutex<Vec<crate::journal::Op>>,
    pub(crate) snapshot_due: std::sync::atomic::AtomicBool,
    /// Where a write marks the resident for a look at their triggers, and
    /// how many writes ended since the database was opened.
    pub(crate) wakes: Arc<crate::wakes::Wakes>,
    pub(crate) writes: std::sync::atomic::AtomicU64,
}

impl Drop for OpenSpace {
    fn drop(&mut self) {
        if *self.seq.get_mut() > self.seq_at_open {
            self.closed_with_changes.lock().unwrap_or_else(|p| p.into_inner()).insert(self.name.clone());
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `root`, checking documents against
    /// `vocabulary`. Fails with [`StoreError::InUse`] while another process
    /// has it open.
    pub fn open(root: &Path, vocabulary: Arc<Vocabulary>) -> Result<Store> {
        Store::open_with(root, vocabulary, StoreOptions::default())
    }

    pub fn open_with(root: &Path, vocabulary: Arc<Vocabulary>, options: StoreOptions) -> Result<Store> {
        for dir in ["residents", "incoming", "removing"] {
            std::fs::create_dir_all(root.join(dir)).map_err(io_error(&root.join(dir)))?;
        }
        let lock_path = root.join("lock");
        let lock =
            File::options().create(true).truncate(false).write(true).open(&lock_path).map_err(io_error(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::InUse(root.display().to_string())),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(&lock_path)(e)),
        }
        let wakes = crate::wakes::Wakes::open(root, || residents_in(&root.join("residents")))?;
        let store = Store {
            shared: Arc::new(Shared {
                root: root.to_owned(),
                _lock: lock,
                vocabulary,
                app_cache: Arc::default(),
                options,
                open: Mutex::default(),
                closed_with_changes: Arc::default(),
                shipper: Arc::default(),
                wakes: Arc::new(wakes),
                listed: Mutex::default(),
            }),
        };
        store.remove_unfinished()?;
        Ok(store)
    }

    pub fn vocabulary(&self) -> &Vocabulary {
        &self.shared.vocabulary
    }

    pub(crate) fn shipper_slot(&self) -> &crate::shipping::ShipperSlot {
        &self.shared.shipper
    }

    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    fn residents_dir(&self) -> PathBuf {
        self.shared.root.join("residents")
    }

    fn incoming_dir(&self) -> PathBuf {
        self.shared.root.join("incoming")
    }

    /// The directory of a resident's database.
    pub fn space_dir(&self, name: &ResidentName) -> PathBuf {
        self.residents_dir().join(name.as_str())
    }

    /// Spaces a crash left half-built, and deletions it left half-done.
    /// Only at open: the lock guarantees no other process is building one,
    /// and this one has not started yet.
    fn remove_unfinished(&self) -> Result<()> {
        let mut abandoned = 0;
        for (dir, counts) in [(self.incoming_dir(), true), (self.shared.root.join("removing"), false)] {
            for entry in std::fs::read_dir(&dir).map_err(io_error(&dir))? {
                let path = entry.map_err(io_error(&dir))?.path();
                remove_any(&path)?;
                abandoned += usize::from(counts);
            }
        }
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "a restore or an upgrade was interrupted by a crash: what it had built was removed"
            );
        }
        Ok(())
    }

    /// Makes every write of every open space so far durable.
    pub fn flush(&self) -> Result<()> {
        let open: Vec<Arc<OpenSpace>> = self.lock_open().live.values().filter_map(Weak::upgrade).collect();
        for space in open {
            space.db.flush()?;
        }
        Ok(())
    }

    /// The residents, in name order.
    pub fn residents(&self) -> Result<Vec<ResidentName>> {
        Ok(self.residents_listed()?.to_vec())
    }

    /// [`Self::residents`], shared: the same list until a resident is added
    /// or removed, read from the disk only then (a scheduler's tick over
    /// 10,000 residents must not list a directory and copy every name).
    pub fn residents_listed(&self) -> Result<Arc<[ResidentName]>> {
        let mut listed = self.shared.listed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(residents) = &*listed {
            return Ok(residents.clone());
        }
        let residents: Arc<[ResidentName]> = residents_in(&self.residents_dir())?.into();
        *listed = Some(residents.clone());
        Ok(residents)
    }

    /// Someone was added or removed: the next listing reads the disk.
    fn residents_changed(&self) {
        *self.shared.listed.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The residents whose triggers need a look after a start, and when (0:
    /// at once); the others need one only after a write. See
    /// [`crate::wakes`].
    pub fn trigger_wakes(&self) -> Result<Vec<(ResidentName, u64)>> {
        let (wakes, strays): (Vec<_>, Vec<_>) =
            self.shared.wakes.all()?.into_iter().partition(|(name, _)| self.has_resident(name));
        // A restore that was discarded marked a resident who never was.
        for (name, _) in strays {
            self.shared.wakes.forget(&name)?;
        }
        Ok(wakes)
    }

    /// Whether the store's directory answers (for health checks: costs one
    /// `stat`, whatever the number of residents).
    pub fn is_available(&self) -> bool {
        self.residents_dir().is_dir()
    }

    pub fn has_resident(&self, name: &ResidentName) -> bool {
        self.space_dir(name).is_dir()
    }

    /// Creates a resident with an empty space.
    pub fn create_resident(&self, name: &ResidentName) -> Result<ResidentSpace> {
        let mut open = self.lock_open();
        if self.incoming_dir().join(name.as_str()).exists() {
            return Err(StoreError::ResidentExists(name.to_string()));
        }
        let dir = self.space_dir(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::ResidentExists(name.to_string()))
            }
            Err(e) => return Err(io_error(&dir)(e)),
        }
        self.residents_changed();
        let created = self.open_database(name, &dir).and_then(|space| {
            space.db.flush()?;
            sync_dir(&self.residents_dir())?;
            Ok(space)
        });
        match created {
            Ok(space) => {
                let space = self.remember(&mut open, space);
                drop(open);
                // In a cluster a resident's log starts with their space.
                space.ship_snapshot_when_placed();
                Ok(space)
            }
            Err(e) => {
                // Nothing of a resident that could not be created stays.
                let _ = std::fs::remove_dir_all(&dir);
                self.residents_changed();
                Err(e)
            }
        }
    }

    /// Opens an existing resident's space.
    pub fn resident(&self, name: &ResidentName) -> Result<ResidentSpace> {
        let mut open = self.lock_open();
        if let Some(space) = open.live.get(name).and_then(Weak::upgrade) {
            return Ok(self.remember(&mut open, space));
        }
        let dir = self.space_dir(name);
        if !dir.is_dir() {
            return Err(StoreError::UnknownResident(name.to_string()));
        }
        let space = self.open_database(name, &dir)?;
        self.recovered(self.remember(&mut open, space))
    }

    /// A space just opened, with the imports a crash interrupted finished.
    /// The database was closed, so no import of this process is under way
    /// in it, and the store's lock rules out other processes. Called with
    /// the open spaces' lock held, so that no import starts before.
    fn recovered(&self, space: ResidentSpace) -> Result<ResidentSpace> {
        let replayed = space.replay_journal()?;
        if replayed > 0 {
            tracing::warn!(replayed, "writes a crash interrupted after they were on disk were completed");
        }
        let (published, discarded) = space.recover_imports()?;
        if published + discarded > 0 {
            tracing::warn!(
                published,
                discarded,
                "imports interrupted by a crash: the committed ones were completed, the others discarded"
            );
        }
        Ok(space)
    }

    /// Deletes a resident and everything of theirs, freeing their disk.
    /// Refused while the space is in use.
    pub fn remove_resident(&self, name: &ResidentName) -> Result<()> {
        let mut open = self.lock_open();
        open.recent.retain(|s| &s.name != name);
        if let Some(weak) = open.live.remove(name) {
            if weak.upgrade().is_some() {
                open.live.insert(name.clone(), weak);
                return Err(StoreError::ResidentBusy(name.to_string()));
            }
        }
        let dir = self.space_dir(name);
        if !dir.is_dir() {
            return Err(StoreError::UnknownResident(name.to_string()));
        }
        let removing = self.shared.root.join("removing").join(format!("{name}.{}", unique_suffix()));
        std::fs::rename(&dir, &removing).map_err(io_error(&dir))?;
        self.residents_changed();
        sync_dir(&self.residents_dir())?;
        drop(open);
        self.shared.wakes.forget(name)?;
        // Once renamed the resident is gone; a crash before the files are
        // deleted leaves them to the next open.
        remove_any(&removing)
    }

    /// A new space in `incoming/`, to be filled and then published under
    /// `name` by [`publish_incoming`](Self::publish_incoming), or dropped by
    /// [`discard_incoming`](Self::discard_incoming). A crash in between
    /// leaves nothing: the next open removes it.
    pub(crate) fn begin_incoming(&self, name: &ResidentName) -> Result<ResidentSpace> {
        let _open = self.lock_open();
        if self.has_resident(name) {
            return Err(StoreError::ResidentExists(name.to_string()));
        }
        let dir = self.incoming_dir().join(name.as_str());
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            // Another restore of the same name is under way.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::ResidentExists(name.to_string()))
            }
            Err(e) => return Err(io_error(&dir)(e)),
        }
        match self.open_database(name, &dir) {
            Ok(space) => Ok(self.handle(space)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// Makes a complete incoming space the resident `name`'s, in one rename.
    /// `space` must be the last handle on it: the database is closed first.
    pub(crate) fn publish_incoming(&self, space: ResidentSpace) -> Result<ResidentSpace> {
        let name = space.name.clone();
        space.db.flush()?;
        close(space)?;
        let mut open = self.lock_open();
        let (from, to) = (self.incoming_dir().join(name.as_str()), self.space_dir(&name));
        if to.exists() {
            drop(open);
            remove_any(&from)?;
            return Err(StoreError::ResidentExists(name.to_string()));
        }
        std::fs::rename(&from, &to).map_err(io_error(&from))?;
        self.residents_changed();
        sync_dir(&self.residents_dir())?;
        sync_dir(&self.incoming_dir())?;
        // A whole space arrived: its apps' triggers need a look.
        self.shared.wakes.mark(&name);
        let space = self.open_database(&name, &to)?;
        // Recovered before the lock is let go: nobody may start an import
        // in it first (recovery discards every uncommitted staging tree).
        self.recovered(self.remember(&mut open, space))
    }

    pub(crate) fn discard_incoming(&self, space: ResidentSpace) -> Result<()> {
        let dir = self.incoming_dir().join(space.name.as_str());
        close(space)?;
        remove_any(&dir)
    }

    /// Opens the sled database in `dir` (see [`open_sled`]). Opening a database this process
    /// has just closed may find sled's lock still held by a flush finishing
    /// on another thread: that is waited for, briefly.
    fn open_database(&self, name: &ResidentName, dir: &Path) -> Result<Arc<OpenSpace>> {
        let config = space_config(dir)
            .cache_capacity(self.shared.options.cache_bytes_per_space)
            // Every acknowledged write is flushed by the store itself; a
            // flusher thread per open database would cost a thread each.
            .flush_every_ms(None);
        let mut wait = Duration::from_millis(2);
        let db = loop {
            match open_sled(&config, dir) {
                Ok(db) => break db,
                Err(e) if is_lock_error(&e) && wait < Duration::from_secs(2) => {
                    std::thread::sleep(wait);
                    wait *= 2;
                }
                Err(e) if is_lock_error(&e) => return Err(StoreError::InUse(dir.display().to_string())),
                Err(e) => return Err(StoreError::Sled(e)),
            }
        };
        let mut trees = Vec::with_capacity(TREES.len());
        for kind in TREES {
            trees.push(db.open_tree(kind)?);
        }
        let trees: [sled::Tree; 10] = trees.try_into().unwrap_or_else(|_| unreachable!("one tree per name"));
        // meta is the fourth tree.
        let seq = crate::docs::decode_seq(trees[3].get(crate::docs::SEQ_KEY)?.as_deref());
        let journal = db.open_tree("journal")?;
        // Records left by a crash keep their numbers until replayed.
        let next_record = match journal.last()? {
            Some((key, _)) => key.as_ref().try_into().map_or(0, u64::from_be_bytes) + 1,
            None => 0,
        };
        Ok(Arc::new(OpenSpace {
            name: name.clone(),
            db,
            trees,
            seq: seq.into(),
            journal,
            journal_seq: next_record.into(),
            writing: Mutex::new(()),
            seq_at_open: seq,
            closed_with_changes: self.shared.closed_with_changes.clone(),
            shipper: self.shared.shipper.clone(),
            unshipped: Mutex::default(),
            snapshot_due: false.into(),
            wakes: self.shared.wakes.clone(),
            writes: 0.into(),
        }))
    }

    /// Tracks an open space and hands out a handle on it.
    fn remember(&self, open: &mut Locked<'_>, space: Arc<OpenSpace>) -> ResidentSpace {
        open.live.insert(space.name.clone(), Arc::downgrade(&space));
        open.recent.retain(|s| !Arc::ptr_eq(s, &space));
        open.recent.push_back(space.clone());
        while open.recent.len() > self.shared.options.idle_spaces {
            if let Some(evicted) = open.recent.pop_front() {
                open.evicted.push(evicted);
            }
        }
        if open.live.len() > 2 * self.shared.options.idle_spaces + 64 {
            open.live.retain(|_, weak| weak.strong_count() > 0);
        }
        self.handle(space)
    }

    fn handle(&self, open: Arc<OpenSpace>) -> ResidentSpace {
        let [docs, index, changes, meta, apps, packages, audit, app_log, outbox, notifications] = open.trees.clone();
        ResidentSpace {
            name: open.name.clone(),
            vocabulary: self.shared.vocabulary.clone(),
            app_cache: self.shared.app_cache.clone(),
            db: open.db.clone(),
            open,
            docs,
            index,
            changes,
            meta,
            apps,
            packages,
            audit,
            app_log,
            outbox,
            notifications,
        }
    }

    fn lock_open(&self) -> Locked<'_> {
        // The map stays consistent whatever a panicking holder did: every
        // change to it is one insert or removal.
        let guard = self.shared.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Locked { guard, evicted: Vec::new() }
    }

    /// How many residents' databases are open (in use or idle).
    pub fn open_spaces(&self) -> usize {
        self.lock_open().live.values().filter(|w| w.strong_count() > 0).count()
    }

    /// The residents whose database was closed after something was written
    /// in it, since the last call: with [`Store::open_residents`], every
    /// resident whose documents may have changed since that call.
    pub fn take_closed_with_changes(&self) -> Vec<ResidentName> {
        std::mem::take(&mut *self.shared.closed_with_changes.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .collect()
    }

    /// The residents whose database is open (in use or idle).
    pub fn open_residents(&self) -> Vec<ResidentName> {
        self.lock_open().live.iter().filter(|(_, w)| w.strong_count() > 0).map(|(n, _)| n.clone()).collect()
    }
}

impl ResidentSpace {
    /// The names of this space's staging trees.
    pub(crate) fn staging_trees(&self) -> Vec<sled::IVec> {
        self.db.tree_names().into_iter().filter(|n| n.starts_with(STAGING_PREFIX.as_bytes())).collect()
    }
}

/// Closes the database of the last handle on it.
fn close(space: ResidentSpace) -> Result<()> {
    let name = space.name.to_string();
    let ResidentSpace { open, db, .. } = space;
    drop(db);
    match Arc::try_unwrap(open) {
        Ok(open) => {
            drop(open);
            Ok(())
        }
        Err(_) => Err(StoreError::ResidentBusy(name)),
    }
}

/// sled 0.34 reports a taken lock only in the message of an `Other` error.
pub(crate) fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock
        || io.to_string().starts_with("could not acquire lock"))
}

pub(crate) fn io_error(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.display().to_string(), source }
}

/// Makes the entries of `dir` (a created, renamed or removed child) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))
}

pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let removed = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    match removed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path)(e)),
    }
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// Opens a sled database, working around a crash-safety bug of sled 0.34:
/// a snapshot is written to `snap.LSN.generating` and renamed to
/// `snap.LSN` once complete, but at open sled takes the last file named
/// `snap.*`, unfinished ones included (spacejam/sled#1527). A process
/// killed while writing a snapshot thus leaves a database sled refuses as
/// corrupt, though nothing in it is: its previous snapshot and its log are
/// intact. When sled says corrupt and such unfinished files are there,
/// they are removed (a finished snapshot was renamed first) and the open is
/// tried once more. Only on that error: a running sled of this process may
/// be writing one right now.
pub(crate) fn open_sled(config: &sled::Config, dir: &Path) -> sled::Result<sled::Db> {
    match config.open() {
        Err(sled::Error::Corruption { .. }) if remove_unfinished_snapshots(dir)? > 0 => {
            tracing::warn!("removed a snapshot a crash left unfinished; opening again");
            config.open()
        }
        other => other,
    }
}

/// The residents whose spaces are in `dir`, in name order.
fn residents_in(dir: &Path) -> Result<Vec<ResidentName>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        match entry.file_name().to_str().and_then(|s| s.parse::<ResidentName>().ok()) {
            Some(name) => names.push(name),
            // Not ours (a stray file an administrator left): ignored,
            // never deleted.
            None => tracing::warn!(dir = %dir.display(), "an entry that is not a resident's space is ignored"),
        }
    }
    names.sort();
    Ok(names)
}

/// The sled segment size of a new space. sled's log is made of segments,
/// and each open of a database (its recovery) fills the last one out on
/// disk: at sled's default of 512 KiB, a resident opened once took half a
/// megabyte, written or not. Pages over a quarter of a segment are kept in
/// blob files of their own, so the segment is not made smaller still: an
/// app's package, a large document, are blobs either way.
pub const SPACE_SEGMENT_BYTES: usize = 64 << 10;

/// sled's settings for the space in `dir`: its segment size is the one
/// its `conf` says it was made with (sled refuses any other; spaces made
/// before [`SPACE_SEGMENT_BYTES`] keep sled's default), that one for a new
/// space.
pub fn space_config(dir: &Path) -> sled::Config {
    // Its lines of text end with a binary checksum.
    let made_with = std::fs::read(dir.join("conf")).ok().and_then(|conf| {
        String::from_utf8_lossy(&conf)
            .lines()
            .find_map(|line| line.strip_prefix("segment_size:").and_then(|n| n.trim().parse::<usize>().ok()))
    });
    sled::Config::new().path(dir).segment_size(made_with.unwrap_or(SPACE_SEGMENT_BYTES))
}

/// Removes `snap.*.generating` files from a sled directory; returns how many.
fn remove_unfinished_snapshots(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}
