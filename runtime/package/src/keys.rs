//! Publisher keys: ed25519, written as lower-case hex text.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The first line of a secret key file, so that it is recognisable and never
/// mistaken for a public key.
const SECRET_HEADER: &str = "domicile-secret-key-v1";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("`{0}` is not a public key: expected 64 hexadecimal characters, or a .pub file")]
    BadPublicKey(String),
    #[error("{path} is not a domicile secret key file")]
    BadSecretKey { path: String },
    #[error("cannot read or write key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// An ed25519 public key, shown as 64 hex characters. Holds the compressed
/// point, checked to decompress when the key is made.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::BadPublicKey(hex::encode(bytes)))?;
        Ok(PublicKey(bytes))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Strict verification: rejects weak keys and malleable signatures.
    pub(crate) fn verify_strict(
        &self,
        message: &[u8],
        signature: &[u8; 64],
    ) -> Result<(), ed25519_dalek::SignatureError> {
        VerifyingKey::from_bytes(&self.0)?.verify_strict(message, &Signature::from_bytes(signature))
    }

    /// Reads a key given as hex text or as the path of a `.pub` file.
    pub fn from_text_or_file(arg: &str) -> Result<PublicKey, KeyError> {
        if let Ok(key) = arg.parse() {
            return Ok(key);
        }
        let path = Path::new(arg);
        // A path that names something other than a file is refused as such.
        if path.exists() {
            let bytes = crate::files::read_regular(path, KEY_FILE_MAX)
                .map_err(|source| KeyError::Io { path: arg.into(), source })?;
            return String::from_utf8_lossy(&bytes).trim().parse();
        }
        Err(KeyError::BadPublicKey(arg.chars().take(80).collect()))
    }
}

/// A key file is a line or two of hex: anything much longer is not one.
const KEY_FILE_MAX: u64 = 4096;

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let bad = || KeyError::BadPublicKey(s.chars().take(80).collect());
        let bytes: [u8; 32] = hex::decode(s.trim()).ok().and_then(|v| v.try_into().ok()).ok_or_else(bad)?;
        PublicKey::from_bytes(bytes)
    }
}

impl TryFrom<String> for PublicKey {
    type Error = KeyError;
    fn try_from(s: String) -> Result<Self, KeyError> {
        s.parse()
    }
}

impl From<PublicKey> for String {
    fn from(k: PublicKey) -> String {
        k.to_string()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// A publisher's signing key. Never printed.
pub struct SecretKey(SigningKey);

impl SecretKey {
    pub fn generate() -> SecretKey {
        SecretKey(SigningKey::generate(&mut rand_core::OsRng))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// The signature of `message`: a caller signing something other than
    /// a package or an index puts its own context first, so that no
    /// signature of one kind passes for another.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    pub fn load(path: &Path) -> Result<SecretKey, KeyError> {
        let shown = path.display().to_string();
        let bytes = crate::files::read_regular(path, KEY_FILE_MAX)
            .map_err(|source| KeyError::Io { path: shown.clone(), source })?;
        let text = String::from_utf8_lossy(&bytes);
        let bad = || KeyError::BadSecretKey { path: shown.clone() };
        let mut lines = text.lines();
        if lines.next() != Some(SECRET_HEADER) {
            return Err(bad());
        }
        let seed: [u8; 32] =
            lines.next().and_then(|l| hex::decode(l.trim()).ok()).and_then(|v| v.try_into().ok()).ok_or_else(bad)?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// Writes the key readable by its owner only; refuses to overwrite.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io { path: path.display().to_string(), source };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        writeln!(file, "{SECRET_HEADER}\n{}", hex::encode(self.0.to_bytes())).map_err(io)?;
        file.sync_all().map_err(io)
    }
}
