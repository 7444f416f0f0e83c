//! What makes an entry read from NATS believable: the cluster's key, which
//! every node holds and which never goes into NATS.
//!
//! NATS stores and carries; it is believed on nothing, and trusted with
//! nothing it could read. Whoever holds a node's NATS credentials (or a
//! copy of the NATS server's disk, or a backup of it) can read and write
//! any entry, so every entry a node writes is encrypted and authenticated
//! (ChaCha20-Poly1305) under a key derived from the cluster key, bound to
//! the bucket and key it was written under (a genuine value moved to
//! another key does not open), and every entry a node reads is refused,
//! logged and counted when it does not open. Accounts' password hashes,
//! sessions' CSRF tokens and residents' data are unreadable in NATS.
//!
//! - **Entries** of the buckets: `DS2`, a random salt (24 bytes), the
//!   time it was written (ms, 8 bytes), then the value encrypted with
//!   its tag (16 bytes); the bucket, key and time are its associated
//!   data. Each value has a key of its own, derived from the salt, so no
//!   (key, nonce) pair is ever used twice however many values a cluster
//!   writes. `DS1` values (a MAC, the time and the value in clear), which
//!   the previous version wrote, still open; a node that joins puts each
//!   one again encrypted ([`crate::Cluster::join`]).
//! - **Lookups**: sessions and API tokens are kept under a keyed hash of
//!   their SHA-256, never the SHA-256 itself; the operator's token is kept
//!   as a keyed hash too.
//! - **Forwarding**: the secret a node proves a forwarded request with is
//!   derived from the key, so it is nowhere in NATS.
//! - **Residents' logs**: each message's content (a write, a snapshot) is
//!   encrypted the same way, bound to the resident's subject, and each
//!   message carries the MAC of its encrypted content and of the MAC of
//!   the write before it (see [`crate::log`]).
//! - **Replays**: a genuine value put back later (a signed-out session, an
//!   account's earlier password hash, an old placement) still opens, so a
//!   value is also checked against the time NATS stored it, which no
//!   client sets: one stored more than the replay window after it was
//!   sealed is an earlier value put again, and is refused. A node writes
//!   what it seals at once, so only a clock far from the NATS server's
//!   (more than the window: 5 minutes unless `--replay-window-s` says)
//!   would make a genuine value look replayed; the refusal says so.
//!   Within the window, each node refuses a value older than one it saw
//!   (see [`crate::recent`]).
//!
//! Why one key for the cluster rather than a key pair per node admitted
//! by the operator: what must be kept from NATS is the same for every node
//! (a session made through one node is checked by another; so are the
//! keyed hashes), so the nodes share a secret in any case, and one key
//! that the operator makes once and copies to each node, as a TLS key,
//! does it all. What it does not give is telling one node from another:
//! a node is trusted as a whole, as its disk is.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{ClusterError, Result};

type HmacSha256 = Hmac<Sha256>;

const KEY_HEADER: &str = "domicile cluster key v1";
/// A value encrypted under the cluster's key.
const SEALED: &[u8; 3] = b"DS2";
/// A value of the previous version: authenticated, not encrypted.
const MACED: &[u8; 3] = b"DS1";
const MAC_LEN: usize = 32;
const SALT_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The cluster's key: 256 random bits, the same on every node, never in NATS.
#[derive(Clone)]
pub struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    pub fn generate() -> ClusterKey {
        let mut key = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut key);
        ClusterKey(key)
    }

    /// Writes the key to a new file, readable by its owner alone.
    pub fn write_new(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let bad = |e: std::io::Error| ClusterError::Access {
            detail: format!("cannot write the cluster key to {}: {e}", path.display()),
        };
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(bad)?;
        file.write_all(format!("{KEY_HEADER}\n{}\n", hex::encode(self.0)).as_bytes()).map_err(bad)
    }

    /// Reads a key file `domicile cluster key` wrote.
    pub fn load(path: &Path) -> Result<ClusterKey> {
        let bad = |detail: String| {
            ClusterError::Access {
            detail: format!("the cluster key {}: {detail}; make one with `domicile cluster key --out FILE` and give every node the same file", path.display()),
        }
        };
        let bytes = domicile_package::files::read_regular(path, 1024).map_err(|e| bad(e.to_string()))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.lines();
        if lines.next() != Some(KEY_HEADER) {
            return Err(bad("is not a domicile cluster key file".into()));
        }
        let key = lines.next().and_then(|l| hex::decode(l.trim()).ok()).and_then(|k| <[u8; 32]>::try_from(k).ok());
        key.map(ClusterKey).ok_or_else(|| bad("its key is not 64 hexadecimal characters".into()))
    }

    /// A key for one use, so that no two uses share one.
    fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"domicile-cluster-v1/");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Each part with its length before it: no two splits of the same bytes
/// frame alike.
fn framed(parts: &[&[u8]]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(parts.iter().map(|p| 8 + p.len()).sum());
    for part in parts {
        framed.extend_from_slice(&(part.len() as u64).to_be_bytes());
        framed.extend_from_slice(part);
    }
    framed
}

fn random_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
    salt
}

/// The nonce of a key used for one value only.
fn once_nonce() -> ring::aead::Nonce {
    ring::aead::Nonce::assume_unique_for_key([0; 12])
}

/// Whether two secrets (MACs, keyed hashes) are equal, compared in
/// constant time: how long it takes says nothing of where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |differ, (x, y)| differ | (x ^ y)) == 0
}

/// How long after it was sealed NATS may store a value, by default.
pub const DEFAULT_REPLAY_WINDOW: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Why a value stored long after it was sealed is refused.
pub(crate) const REPLAYED: &str = "NATS stored it long after it was sealed (more than the replay window): an earlier value put back, or this node's clock is far from the NATS server's (check both clocks, or widen --replay-window-s)";

/// The keys derived from the cluster key, each for one use.
pub(crate) struct Seal {
    entries: [u8; 32],
    /// Derives the key of each encrypted value (with its salt).
    secrecy: [u8; 32],
    lookups: [u8; 32],
    forwarding: String,
    campaign_attester: [u8; 32],
    replay_window_ms: u64,
}

/// A sealed value that opened: what was written, and when.
pub(crate) struct Opened {
    pub(crate) value: Vec<u8>,
    pub(crate) written_ms: u64,
    /// Written by the previous version: authenticated but in clear in
    /// NATS, to be put again encrypted.
    pub(crate) in_clear: bool,
}

impl Seal {
    pub(crate) fn new(key: &ClusterKey) -> Seal {
        Seal::with_replay_window(key, DEFAULT_REPLAY_WINDOW)
    }

    pub(crate) fn with_replay_window(key: &ClusterKey, window: std::time::Duration) -> Seal {
        Seal {
            entries: key.derive("entries"),
            secrecy: key.derive("secrecy"),
            lookups: key.derive("lookups"),
            forwarding: hex::encode(key.derive("forwarding")),
            campaign_attester: key.derive("campaign-attester"),
            replay_window_ms: window.as_millis().try_into().unwrap_or(u64::MAX),
        }
    }

    /// [`Self::open`], for a value NATS stored at `stored_ms` (its own
    /// time, which no client sets): refused as a replay when that is more
    /// than the replay window after it was sealed.
    pub(crate) fn open_stored(
        &self,
        bucket: &str,
        key: &str,
        sealed: &[u8],
        stored_ms: u64,
    ) -> std::result::Result<Opened, &'static str> {
        let opened = self.open(bucket, key, sealed)?;
        if self.replayed(opened.written_ms, stored_ms) {
            return Err(REPLAYED);
        }
        Ok(opened)
    }

    /// How long after it was sealed NATS may store a value.
    pub(crate) fn replay_window_ms(&self) -> u64 {
        self.replay_window_ms
    }

    /// Whether something sealed at `written_ms` and stored by NATS at
    /// `stored_ms` was stored too long after: put back later.
    pub(crate) fn replayed(&self, written_ms: u64, stored_ms: u64) -> bool {
        stored_ms > written_ms.saturating_add(self.replay_window_ms)
    }

    fn mac(&self, key: &[u8; 32], parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        for part in parts {
            // As `framed` frames them, without copying a value.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// `value`, encrypted and authenticated for `key` of `bucket`.
    pub(crate) fn seal(&self, bucket: &str, key: &str, value: &[u8], written_ms: u64) -> Vec<u8> {
        let at = written_ms.to_be_bytes();
        let aad = framed(&[bucket.as_bytes(), key.as_bytes(), &at]);
        let mut sealed = Vec::with_capacity(SEALED.len() + SALT_LEN + at.len() + value.len() + TAG_LEN);
        sealed.extend_from_slice(SEALED);
        let salt = random_salt();
        sealed.extend_from_slice(&salt);
        sealed.extend_from_slice(&at);
        sealed.extend_from_slice(&self.encrypt(&salt, &aad, value));
        sealed
    }

    /// The value sealed for `key` of `bucket`, or why it is not one.
    pub(crate) fn open(&self, bucket: &str, key: &str, sealed: &[u8]) -> std::result::Result<Opened, &'static str> {
        const ALTERED: &str = "its seal does not match: not written by a node of this cluster, or altered since";
        if let Some(rest) = sealed.strip_prefix(SEALED) {
            if rest.len() < SALT_LEN + 8 + TAG_LEN {
                return Err("too short to be sealed");
            }
            let (salt, rest) = rest.split_at(SALT_LEN);
            let (at, encrypted) = rest.split_at(8);
            let aad = framed(&[bucket.as_bytes(), key.as_bytes(), at]);
            let value = self.decrypt(salt, &aad, encrypted).ok_or(ALTERED)?;
            let written_ms = u64::from_be_bytes(at.try_into().expect("8 bytes"));
            return Ok(Opened { value, written_ms, in_clear: false });
        }
        let rest = sealed.strip_prefix(MACED).ok_or("not sealed with the cluster's key")?;
        if rest.len() < MAC_LEN + 8 {
            return Err("too short to be sealed");
        }
        let (mac, rest) = rest.split_at(MAC_LEN);
        let (at, value) = rest.split_at(8);
        self.mac(&self.entries, &[bucket.as_bytes(), key.as_bytes(), at, value])
            .verify_slice(mac)
            .map_err(|_| ALTERED)?;
        Ok(Opened {
            value: value.to_vec(),
            written_ms: u64::from_be_bytes(at.try_into().expect("8 bytes")),
            in_clear: true,
        })
    }

    /// The content of a message of a resident's log (a write, a snapshot),
    /// encrypted and bound to `context` (the log's subject): a random salt,
    /// then the content encrypted with its tag.
    pub(crate) fn encrypt_content(&self, context: &str, content: &[u8]) -> Vec<u8> {
        let salt = random_salt();
        let mut stored = Vec::with_capacity(SALT_LEN + content.len() + TAG_LEN);
        stored.extend_from_slice(&salt);
        stored.extend_from_slice(&self.encrypt(&salt, context.as_bytes(), content));
        stored
    }

    /// What [`Self::encrypt_content`] encrypted for `context`, or `None`
    /// when it is not that (altered, another resident's, another key's).
    pub(crate) fn decrypt_content(&self, context: &str, stored: &[u8]) -> Option<Vec<u8>> {
        if stored.len() < SALT_LEN + TAG_LEN {
            return None;
        }
        let (salt, encrypted) = stored.split_at(SALT_LEN);
        self.decrypt(salt, context.as_bytes(), encrypted)
    }

    /// The key of the value with `salt`: each value has its own, so the
    /// nonce under it can be a constant.
    fn value_key(&self, salt: &[u8]) -> ring::aead::LessSafeKey {
        let derived: [u8; 32] = self.mac(&self.secrecy, &[salt]).finalize().into_bytes().into();
        let key = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &derived).expect("a 32-byte key");
        ring::aead::LessSafeKey::new(key)
    }

    fn encrypt(&self, salt: &[u8], aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut buffer = plain.to_vec();
        self.value_key(salt)
            .seal_in_place_append_tag(once_nonce(), ring::aead::Aad::from(aad), &mut buffer)
            .expect("ChaCha20-Poly1305 takes any length a Vec holds");
        buffer
    }

    fn decrypt(&self, salt: &[u8], aad: &[u8], encrypted: &[u8]) -> Option<Vec<u8>> {
        let mut buffer = encrypted.to_vec();
        let plain = self.value_key(salt).open_in_place(once_nonce(), ring::aead::Aad::from(aad), &mut buffer).ok()?;
        let len = plain.len();
        buffer.truncate(len);
        Some(buffer)
    }

    /// A keyed hash (hex) of `what` for `use_`: what NATS keeps of a
    /// session's cookie, an API token or the operator's token.
    pub(crate) fn lookup(&self, use_: &str, what: &str) -> String {
        hex::encode(self.mac(&self.lookups, &[use_.as_bytes(), what.as_bytes()]).finalize().into_bytes())
    }

    /// The MAC of a message of a resident's log: its parts, in order.
    pub(crate) fn log_mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.mac(&self.entries, parts).finalize().into_bytes().into()
    }

    /// The secret a node proves a forwarded request with.
    pub(crate) fn forwarding(&self) -> &str {
        &self.forwarding
    }

    /// The seed of the nodes' campaign attester key.
    pub(crate) fn campaign_attester_seed(&self) -> [u8; 32] {
        self.campaign_attester
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_where_and_as_it_was_written() {
        let seal = Seal::new(&ClusterKey::generate());
        let sealed = seal.seal("domicile-sessions", "abc", b"{\"resident\":\"alice\"}", 42);
        let opened = seal.open("domicile-sessions", "abc", &sealed).unwrap();
        assert_eq!((opened.value.as_slice(), opened.written_ms), (&b"{\"resident\":\"alice\"}"[..], 42));
        assert!(seal.open("domicile-sessions", "abd", &sealed).is_err(), "moved to another key");
        assert!(seal.open("domicile-tokens", "abc", &sealed).is_err(), "moved to another bucket");
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(seal.open("domicile-sessions", "abc", &altered).is_err(), "altered");
        let mut later = sealed.clone();
        later[3 + 24 + 7] ^= 1;
        assert!(seal.open("domicile-sessions", "abc", &later).is_err(), "its time altered");
        let mut salted = sealed.clone();
        salted[3] ^= 1;
        assert!(seal.open("domicile-sessions", "abc", &salted).is_err(), "its salt altered");
        let other = Seal::new(&ClusterKey::generate());
        assert!(other.open("domicile-sessions", "abc", &sealed).is_err(), "another cluster's key");
        assert!(seal.open("domicile-sessions", "abc", b"{\"resident\":\"alice\"}").is_err(), "not sealed");
        assert!(seal.open("domicile-sessions", "abc", b"DS1").is_err(), "truncated");
        assert!(seal.open("domicile-sessions", "abc", &sealed[..sealed.len() - 1]).is_err(), "cut");
        assert!(!opened.in_clear);
    }

    #[test]
    fn nothing_of_a_sealed_value_is_in_clear_and_no_two_seals_alike() {
        let seal = Seal::new(&ClusterKey::generate());
        let hash = b"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let (one, two) =
            (seal.seal("domicile-accounts", "alice", hash, 7), seal.seal("domicile-accounts", "alice", hash, 7));
        assert_ne!(one, two, "a salt of its own for each value");
        for sealed in [&one, &two] {
            assert!(!sealed.windows(8).any(|w| hash.windows(8).any(|h| h == w)), "no 8 bytes of it in clear");
            assert_eq!(seal.open("domicile-accounts", "alice", sealed).unwrap().value, hash);
        }
        let content = seal.encrypt_content("domicile.space.alice", b"{\"mode\":\"bike\"}");
        assert!(!content.windows(4).any(|w| w == b"bike"));
        assert_eq!(seal.decrypt_content("domicile.space.alice", &content).unwrap(), b"{\"mode\":\"bike\"}");
        assert!(seal.decrypt_content("domicile.space.bob", &content).is_none(), "another resident's log");
        let mut altered = content.clone();
        altered[30] ^= 1;
        assert!(seal.decrypt_content("domicile.space.alice", &altered).is_none(), "altered");
        assert!(seal.decrypt_content("domicile.space.alice", &content[..20]).is_none(), "cut");
        assert!(Seal::new(&ClusterKey::generate()).decrypt_content("domicile.space.alice", &content).is_none());
    }

    /// A value as the previous version sealed it: authenticated, in clear.
    fn sealed_in_clear(seal: &Seal, bucket: &str, key: &str, value: &[u8], written_ms: u64) -> Vec<u8> {
        let at = written_ms.to_be_bytes();
        let mac = seal.mac(&seal.entries, &[bucket.as_bytes(), key.as_bytes(), &at, value]).finalize().into_bytes();
        [&MACED[..], &mac, &at, value].concat()
    }

    #[test]
    fn a_value_of_the_previous_version_still_opens_and_says_it_is_in_clear() {
        let seal = Seal::new(&ClusterKey::generate());
        let old = sealed_in_clear(&seal, "domicile-accounts", "alice", b"{}", 42);
        let opened = seal.open("domicile-accounts", "alice", &old).unwrap();
        assert_eq!((opened.value.as_slice(), opened.written_ms, opened.in_clear), (&b"{}"[..], 42, true));
        assert!(seal.open("domicile-accounts", "bob", &old).is_err(), "still bound to its key");
        let mut altered = old.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(seal.open("domicile-accounts", "alice", &altered).is_err(), "still authenticated");
        let other = Seal::new(&ClusterKey::generate());
        assert!(other.open("domicile-accounts", "alice", &old).is_err());
    }

    #[test]
    fn a_value_stored_long_after_it_was_sealed_is_a_replay() {
        let seal = Seal::with_replay_window(&ClusterKey::generate(), std::time::Duration::from_secs(60));
        let sealed = seal.seal("domicile-sessions", "abc", b"{}", 1_000_000);
        assert!(seal.open_stored("domicile-sessions", "abc", &sealed, 1_000_050).is_ok(), "stored at once");
        assert!(seal.open_stored("domicile-sessions", "abc", &sealed, 1_060_000).is_ok(), "within the window");
        assert!(seal.open_stored("domicile-sessions", "abc", &sealed, 999_000).is_ok(), "a clock a little ahead");
        assert_eq!(seal.open_stored("domicile-sessions", "abc", &sealed, 1_060_001).err(), Some(REPLAYED));
        assert!(seal.open_stored("domicile-sessions", "abd", &sealed, 1_000_050).is_err(), "still sealed for its key");
    }

    #[test]
    fn lookups_and_forwarding_are_keyed_and_apart() {
        let key = ClusterKey::generate();
        let (seal, same) = (Seal::new(&key), Seal::new(&key));
        assert_eq!(seal.lookup("session", "x"), same.lookup("session", "x"));
        assert_ne!(seal.lookup("session", "x"), seal.lookup("token", "x"));
        assert_ne!(seal.lookup("session", "x"), Seal::new(&ClusterKey::generate()).lookup("session", "x"));
        assert_eq!(seal.forwarding().len(), 64);
        assert_ne!(seal.forwarding(), Seal::new(&ClusterKey::generate()).forwarding());
    }

    #[test]
    fn a_key_file_is_written_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        let key = ClusterKey::generate();
        key.write_new(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(ClusterKey::load(&path).unwrap().0, key.0);
        assert!(key.write_new(&path).is_err(), "an existing key is never overwritten");
        std::fs::write(&path, "not a key\n").unwrap();
        assert!(ClusterKey::load(&path).unwrap_err().to_string().contains("not a domicile cluster key"));
    }
}
