//! What a node remembers of a bucket's recent changes, so that a genuine
//! value put back **within** the replay window is refused too.
//!
//! The seal ([`crate::seal`]) refuses a value NATS stored more than the
//! replay window after it was sealed. Within the window, a genuine earlier
//! value put back by whoever holds the nodes' NATS credentials (a session
//! signed out a minute ago, an account's previous password hash, an older
//! placement) still opens. What NATS cannot forge is what this node has
//! already seen: each node follows every change of each bucket (a watch,
//! from the last change of each key at start), reads and writes included,
//! and remembers per key the time sealed with the newest value it saw, or
//! when it saw the key removed, and the revision NATS gave it. A value
//! sealed before that but stored after it (a later revision: NATS numbers
//! what it stores, and no client can choose the number) is an earlier one
//! put back, and refused. One stored before it is merely out of date (a
//! watch delivering the changes in order, behind a direct read): it is
//! not a replay.
//!
//! Only the changes of the last two replay windows are kept: a value
//! sealed before that is refused by its stored time already. They are
//! kept in the node's home as well, so that a restart does not forget a
//! sign-out of a minute ago.
//!
//! A node that was not following while a change happened (stopped, or
//! started anew with its home lost) would not know of it: when it starts,
//! it asks every other live node what they remember
//! ([`crate::Cluster::learn_recent`]), over the nodes' own channel (TLS to
//! the certificate each heartbeat names, with the cluster's secret), which
//! NATS cannot answer for them. What is left: when no other node that saw
//! the change is live, a node that did not see it believes an earlier value
//! put back within the window.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A removal is stamped with NATS's clock, the values before it with the
/// writers' clocks: this much skew between them is allowed, so that a
/// value written just before the removal, or just after on a node whose
/// clock is behind, is not taken for one put back.
const REMOVAL_TOLERANCE_MS: u64 = 1_000;

/// The longest key a memory learnt from another node may name (NATS's
/// keys are far shorter).
const MAX_KEY_BYTES: usize = 1024;

/// When the memory is written to the node's home, at most.
const KEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The newest version of each key of one bucket this node saw lately.
#[derive(Debug)]
pub(crate) struct Recent {
    seen: Mutex<Seen>,
    window_ms: u64,
    kept_in: Option<PathBuf>,
}

/// What a node remembers of every bucket's recent changes, as it tells
/// another node that was not following ([`crate::Cluster::recent_memory`]).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecentMemory {
    /// Per bucket, the newest version of each key changed lately.
    pub(crate) buckets: std::collections::BTreeMap<String, HashMap<String, Version>>,
}

impl RecentMemory {
    /// How many keys it names, in all buckets.
    pub fn keys(&self) -> usize {
        self.buckets.values().map(HashMap::len).sum()
    }
}

/// The newest version of a key seen.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Version {
    /// When its value was sealed, or when its removal was seen (less the
    /// tolerance).
    sealed_ms: u64,
    /// The revision NATS gave it (or the value it removed), as far as seen.
    revision: u64,
}

#[derive(Debug, Default)]
struct Seen {
    newest: HashMap<String, Version>,
    changed_since_kept: bool,
    /// A removal not yet written: written at once, whatever the time
    /// since the last write (a sign-out must survive a crash).
    removal_unkept: bool,
    kept_at: Option<std::time::Instant>,
}

impl Recent {
    /// A memory for a bucket whose values are refused `window_ms` after
    /// they were sealed, kept in the file `kept_in` (none: in memory only),
    /// starting from what that file holds.
    pub(crate) fn open(window_ms: u64, kept_in: Option<PathBuf>) -> Recent {
        let newest: HashMap<String, Version> = kept_in
            .as_ref()
            .and_then(|path| domicile_package::files::read_regular(path, 64 * 1024 * 1024).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let recent = Recent { seen: Mutex::new(Seen { newest, ..Seen::default() }), window_ms, kept_in };
        recent.forget_old(&mut recent.seen(), crate::now_ms());
        recent
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a value of `key` sealed at `written_ms`, stored by NATS as
    /// `revision`, was sealed before a version this node saw (or the key's
    /// removal) yet stored after it: an earlier value put back.
    pub(crate) fn is_put_back(&self, key: &str, written_ms: u64, revision: u64) -> bool {
        self.seen().newest.get(key).is_some_and(|newest| written_ms < newest.sealed_ms && revision > newest.revision)
    }

    /// Notes a value of `key` sealed at `written_ms`, stored as `revision`.
    /// One sealed before the newest seen changes nothing: out of date, or
    /// put back (a watch may deliver one put back before a read refuses it).
    pub(crate) fn saw(&self, key: &str, written_ms: u64, revision: u64) {
        if written_ms.saturating_add(self.window_ms.saturating_mul(2)) < crate::now_ms() {
            return;
        }
        let mut seen = self.seen();
        let newest = seen.newest.entry(key.to_owned()).or_default();
        if written_ms < newest.sealed_ms || (written_ms == newest.sealed_ms && revision <= newest.revision) {
            return;
        }
        *newest = Version { sealed_ms: written_ms, revision: revision.max(newest.revision) };
        seen.changed_since_kept = true;
    }

    /// Notes that `key` was removed, as NATS stored the removal at
    /// `stored_ms` (as `revision`, when known): every value of it seen
    /// before is refused from now on, and any other sealed before the
    /// removal (within the tolerance).
    pub(crate) fn saw_removed(&self, key: &str, stored_ms: u64, revision: Option<u64>) {
        let mut seen = self.seen();
        let removed = stored_ms.saturating_sub(REMOVAL_TOLERANCE_MS);
        let newest = seen.newest.entry(key.to_owned()).or_default();
        newest.sealed_ms = removed.max(newest.sealed_ms + 1);
        newest.revision = newest.revision.max(revision.unwrap_or_default());
        seen.changed_since_kept = true;
        seen.removal_unkept = true;
    }

    /// What this node remembers: the newest version of each key changed
    /// lately, for a node that was not following to learn it.
    pub(crate) fn memory(&self) -> HashMap<String, Version> {
        self.seen().newest.clone()
    }

    /// Learns what another node remembers (`memory`), keeping per key the
    /// newer of the two versions, as if this node had seen it: a value put
    /// back that node refuses, this one refuses too. Versions sealed too
    /// long ago to matter, or later than this node's clock allows, are
    /// left out. Returns how many keys it taught.
    pub(crate) fn learn(&self, memory: HashMap<String, Version>) -> usize {
        let now = crate::now_ms();
        let (horizon, ahead) =
            (now.saturating_sub(self.window_ms.saturating_mul(2)), now.saturating_add(self.window_ms));
        let mut taught = 0;
        let mut seen = self.seen();
        for (key, version) in memory {
            if version.sealed_ms < horizon || version.sealed_ms > ahead || key.len() > MAX_KEY_BYTES {
                continue;
            }
            let newest = seen.newest.entry(key).or_default();
            if version.sealed_ms > newest.sealed_ms
                || (version.sealed_ms == newest.sealed_ms && version.revision > newest.revision)
            {
                // The other node's revision as it is: what this node saw
                // of the key was older, perhaps the very value put back
                // after the newer one (a later revision), which must stay
                // refused.
                *newest = version;
                taught += 1;
            }
        }
        if taught > 0 {
            seen.changed_since_kept = true;
            // As a removal seen: kept at once.
            seen.removal_unkept = true;
        }
        taught
    }

    /// The time to seal a new value of `key` with: no earlier than
    /// `written_ms`, and later than any version of it seen, whatever this
    /// node's clock says (another node's may be ahead).
    pub(crate) fn next_ms(&self, key: &str, written_ms: u64) -> u64 {
        self.seen().newest.get(key).map_or(written_ms, |newest| written_ms.max(newest.sealed_ms + 1))
    }

    /// Forgets what is too old to matter (sealed more than two windows
    /// ago: its stored time refuses it already).
    fn forget_old(&self, seen: &mut Seen, now_ms: u64) {
        let horizon = now_ms.saturating_sub(self.window_ms.saturating_mul(2));
        let before = seen.newest.len();
        seen.newest.retain(|_, newest| newest.sealed_ms >= horizon);
        seen.changed_since_kept |= seen.newest.len() != before;
    }

    /// At most once a second, or at once after a removal: forgets what is
    /// too old to matter, and writes the rest to the node's home if it
    /// changed. Called at every change a watch delivers, so that what
    /// happens between two calls is a check of the time only.
    pub(crate) fn keep(&self) {
        let bytes = {
            let mut seen = self.seen();
            let lately = seen.kept_at.is_some_and(|at| at.elapsed() < KEEP_EVERY);
            if lately && !seen.removal_unkept {
                return;
            }
            seen.kept_at = Some(std::time::Instant::now());
            self.forget_old(&mut seen, crate::now_ms());
            if self.kept_in.is_none() || !seen.changed_since_kept {
                seen.removal_unkept = false;
                return;
            }
            seen.changed_since_kept = false;
            seen.removal_unkept = false;
            serde_json::to_vec(&seen.newest).expect("a map of strings to numbers serialises")
        };
        let path = self.kept_in.as_ref().expect("checked above");
        let temporary = path.with_extension("writing");
        if let Err(e) = std::fs::write(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, path)) {
            tracing::warn!(error = %e, "cannot keep the recent changes of a bucket seen");
        }
    }

    /// Whether there is something [`Self::keep`] has not written yet.
    #[cfg(test)]
    fn unkept(&self) -> bool {
        self.kept_in.is_some() && self.seen().changed_since_kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW_MS: u64 = 300_000;

    #[test]
    fn an_older_value_stored_after_one_seen_or_after_a_removal_is_told_apart() {
        let recent = Recent::open(WINDOW_MS, None);
        let now = crate::now_ms();
        assert!(!recent.is_put_back("k", now - 10_000, 9), "nothing seen yet");
        recent.saw("k", now - 5_000, 4);
        assert!(recent.is_put_back("k", now - 10_000, 9), "sealed before, stored after");
        assert!(!recent.is_put_back("k", now - 10_000, 3), "stored before: out of date, not put back");
        assert!(!recent.is_put_back("k", now - 5_000, 9), "the newest itself");
        recent.saw("k", now - 8_000, 2);
        assert!(recent.is_put_back("k", now - 6_000, 5), "an older one seen later changes nothing");
        recent.saw("k", now - 10_000, 9);
        assert!(recent.is_put_back("k", now - 10_000, 9), "nor one put back, seen before it is read");

        recent.saw_removed("s", now, Some(7));
        assert!(recent.is_put_back("s", now - 60_000, 8), "a session signed out a minute ago");
        assert!(!recent.is_put_back("s", now - 500, 8), "within the clocks' tolerance");
        recent.saw("t", now - 200, 3);
        recent.saw_removed("t", now, None);
        assert!(recent.is_put_back("t", now - 200, 5), "a value seen is refused once removed, however recent");
        assert!(recent.next_ms("s", now - 10_000) > now - REMOVAL_TOLERANCE_MS);
        assert_eq!(recent.next_ms("other", 42), 42);
    }

    #[test]
    fn a_node_learns_what_another_remembers_and_keeps_the_newer_of_each_key() {
        let now = crate::now_ms();
        let other = Recent::open(WINDOW_MS, None);
        other.saw_removed("signed-out", now, Some(7));
        other.saw("changed", now - 1_000, 12);
        let fresh = Recent::open(WINDOW_MS, None);
        fresh.saw("changed", now - 500, 14);
        // The value put back after the removal, seen before learning of it.
        fresh.saw("signed-out", now - 60_000, 8);
        assert!(!fresh.is_put_back("signed-out", now - 60_000, 8), "not seen here");

        let mut memory = other.memory();
        memory.insert("ancient".into(), Version { sealed_ms: now - 3 * WINDOW_MS, revision: 1 });
        memory.insert("from-the-future".into(), Version { sealed_ms: now + 2 * WINDOW_MS, revision: 1 });
        memory.insert("k".repeat(MAX_KEY_BYTES + 1), Version { sealed_ms: now, revision: 1 });
        assert_eq!(fresh.learn(memory), 1, "only the removal teaches it something");
        assert_eq!(fresh.memory()["signed-out"], other.memory()["signed-out"]);
        assert!(fresh.is_put_back("signed-out", now - 60_000, 8), "the session put back after its sign-out");
        assert_eq!(fresh.memory()["changed"], Version { sealed_ms: now - 500, revision: 14 }, "its own, newer, stays");
        for left_out in ["ancient", "from-the-future"] {
            assert!(!fresh.memory().contains_key(left_out), "{left_out}");
        }
    }

    #[test]
    fn what_is_too_old_to_matter_is_forgotten_and_the_rest_kept_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen-domicile-sessions.json");
        let recent = Recent::open(WINDOW_MS, Some(path.clone()));
        let now = crate::now_ms();
        recent.saw_removed("signed-out", now, Some(3));
        recent.saw("ancient", now - 3 * WINDOW_MS, 1);
        assert!(!recent.is_put_back("ancient", 0, 9), "beyond two windows: the stored time refuses it");
        assert!(recent.unkept());
        recent.keep();
        assert!(!recent.unkept());
        let again = Recent::open(WINDOW_MS, Some(path.clone()));
        assert!(again.is_put_back("signed-out", now - 60_000, 4));

        std::fs::write(&path, b"not json").unwrap();
        assert!(!Recent::open(WINDOW_MS, Some(path)).is_put_back("signed-out", 0, 9), "a damaged file is not believed");
    }
}
