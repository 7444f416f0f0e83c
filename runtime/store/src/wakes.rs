//! Which residents' triggers need a look, and when: kept beside the spaces
//! so that a server that starts opens only those residents, not every
//! space of the home (an opened space costs its page cache while open, and
//! a look at 10,000 residents took minutes of a core).
//!
//! `ROOT/wakes/NAME` holds the time (Unix ms) at which resident NAME's
//! triggers next need a look that no write prompts: a schedule's next
//! slot, the end of a back-off. `0`, or anything that does not read as a
//! time (a write a crash cut short), means as soon as possible. No file:
//! only a write can make one of their triggers due.
//!
//! - **A write marks its resident** before it starts and again once done
//!   (see [`Wakes::mark`]): whatever process wrote it, and whether or not it
//!   stopped midway, the next server looks at that resident. Marking costs
//!   one small file write, only for the first write after a look.
//! - **The scheduler settles the mark** after each look with the time its
//!   look found ([`Wakes::settle`]), unless the space was written while it
//!   looked: then the mark stays, and the next look settles it.
//! - **A home of an earlier version** has no `wakes/`: every resident is
//!   marked once when the store first opens (a look at each, as before),
//!   then only those that need one.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::spaces::{io_error, sync_dir};
use crate::{ResidentName, Result};

/// A mark: a look as soon as possible.
const NOW: u64 = 0;

/// The wakes of a home's residents.
pub(crate) struct Wakes {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Residents marked since their last settled look (in this process).
    marked: HashSet<ResidentName>,
    /// What this process last wrote in each resident's file, to skip a
    /// write that changes nothing (`None`: no file).
    written: HashMap<ResidentName, Option<u64>>,
}

impl Wakes {
    /// The wakes of the store in `root`; on the first open of a home of
    /// an earlier version, every resident in `residents` is marked.
    pub(crate) fn open(root: &Path, residents: impl FnOnce() -> Result<Vec<ResidentName>>) -> Result<Wakes> {
        let dir = root.join("wakes");
        if !dir.is_dir() {
            // Built aside and renamed: a crash midway leaves no `wakes/`
            // that would skip the residents not written yet.
            let building = root.join("wakes.building");
            if building.exists() {
                std::fs::remove_dir_all(&building).map_err(io_error(&building))?;
            }
            std::fs::create_dir(&building).map_err(io_error(&building))?;
            for name in residents()? {
                let file = building.join(name.as_str());
                std::fs::write(&file, b"").map_err(io_error(&file))?;
            }
            sync_dir(&building)?;
            std::fs::rename(&building, &dir).map_err(io_error(&building))?;
            sync_dir(root)?;
        }
        Ok(Wakes { dir, state: Mutex::default() })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every resident with a wake: when their triggers need a look (0: at
    /// once). Files that name no resident are left out.
    pub(crate) fn all(&self) -> Result<Vec<(ResidentName, u64)>> {
        let mut wakes = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let entry = entry.map_err(io_error(&self.dir))?;
            let Some(name) = entry.file_name().to_str().and_then(|n| n.parse::<ResidentName>().ok()) else {
                continue;
            };
            let at = std::fs::read_to_string(entry.path()).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(NOW);
            wakes.push((name, at));
        }
        wakes.sort();
        Ok(wakes)
    }

    /// Marks `name` for a look as soon as possible, once per settled look:
    /// durably, before the write it comes with, so that a process that
    /// stops after the write leaves the mark. Called with the space's
    /// write lock held, which orders it with [`Self::settle`]; the file is
    /// written outside the home-wide lock, so residents' marks do not wait
    /// for each other. Best effort: a mark that cannot be written (a full
    /// disk, which the write will meet too) only delays the resident's
    /// on-change triggers to their next write.
    pub(crate) fn mark(&self, name: &ResidentName) {
        if self.state().marked.contains(name) {
            return;
        }
        match self.write(name, Some(NOW)) {
            Ok(()) => {
                let mut state = self.state();
                state.marked.insert(name.clone());
                state.written.insert(name.clone(), Some(NOW));
            }
            Err(e) => tracing::warn!(error = %e, "could not note that a resident's triggers need a look"),
        }
    }

    /// Records what a look at `name`'s triggers found: the next look is
    /// due `at` (`None`: only a write can make one due). When the space was
    /// written while the scheduler looked (`written_since`), the mark stays
    /// instead, for the next look. Called with the space's write lock held.
    pub(crate) fn settle(&self, name: &ResidentName, written_since: bool, at: Option<u64>) -> Result<()> {
        if written_since {
            return Ok(());
        }
        let unchanged = {
            let mut state = self.state();
            state.marked.remove(name);
            state.written.get(name) == Some(&at)
        };
        if unchanged {
            return Ok(());
        }
        self.write(name, at)?;
        self.state().written.insert(name.clone(), at);
        Ok(())
    }

    /// A removed resident has no wake.
    pub(crate) fn forget(&self, name: &ResidentName) -> Result<()> {
        {
            let mut state = self.state();
            state.marked.remove(name);
            state.written.remove(name);
        }
        self.write(name, None)
    }

    /// Writes `name`'s file (`None`: removes it), durably.
    fn write(&self, name: &ResidentName, at: Option<u64>) -> Result<()> {
        let path = self.dir.join(name.as_str());
        let Some(at) = at else {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(&path)(e)),
                _ => Ok(()),
            };
        };
        let existed = path.exists();
        // Written in place: a write cut short reads as "at once".
        let mut file = std::fs::File::create(&path).map_err(io_error(&path))?;
        file.write_all(at.to_string().as_bytes()).and_then(|()| file.sync_data()).map_err(io_error(&path))?;
        if !existed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}
