//! What a node must remember of the cluster's shared values to refuse a
//! genuine older one put back in NATS (to undo a revocation, to bring back
//! an operator's token that was replaced): the time sealed with the newest
//! it saw, and, where the node has no copy of its own, that value. Kept
//! in a file of the node's home, so that a restart does not forget it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The newest value of one shared entry this node saw.
#[derive(Clone, Default)]
pub(crate) struct Newest {
    seen: Arc<Mutex<Seen>>,
    kept_in: Option<PathBuf>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct Seen {
    written_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

impl Newest {
    /// What the file `kept_in` says, if it exists (none: memory only).
    pub(crate) fn open(kept_in: Option<PathBuf>) -> Newest {
        let seen = kept_in
            .as_ref()
            .and_then(|path| std::fs::read(path).ok())
            .and_then(|bytes| serde_json::from_slice::<Seen>(&bytes).ok())
            .unwrap_or_default();
        Newest { seen: Arc::new(Mutex::new(seen)), kept_in }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest value seen, if the node was given one to remember.
    pub(crate) fn value(&self) -> Option<String> {
        self.seen().value.clone()
    }

    /// The time to seal a new version with: later than the newest seen,
    /// whatever this node's clock says.
    pub(crate) fn next_ms(&self) -> u64 {
        crate::now_ms().max(self.seen().written_ms + 1)
    }

    /// Notes a version sealed at `written_ms` (with its `value`, to
    /// remember it); returns the time of the newest seen before it.
    pub(crate) fn saw(&self, written_ms: u64, value: Option<&str>) -> u64 {
        let mut seen = self.seen();
        let before = seen.written_ms;
        if written_ms > before {
            *seen = Seen { written_ms, value: value.map(str::to_owned) };
            if let Some(path) = &self.kept_in {
                let bytes = serde_json::to_vec(&*seen).expect("a number and a string serialise");
                let temporary = path.with_extension("writing");
                if let Err(e) = std::fs::write(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, path)) {
                    tracing::warn!(error = %e, "cannot keep the newest version of a shared value seen");
                }
            }
        }
        before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_is_kept_across_a_restart_and_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator-seen.json");
        let newest = Newest::open(Some(path.clone()));
        assert_eq!(newest.saw(100, Some("a")), 0);
        assert_eq!(newest.saw(50, Some("old")), 100, "an older one is not taken");
        assert_eq!(newest.value().as_deref(), Some("a"));
        let again = Newest::open(Some(path));
        assert_eq!(again.value().as_deref(), Some("a"));
        assert!(again.next_ms() > 100);
        assert_eq!(again.saw(99, None), 100);
    }
}
