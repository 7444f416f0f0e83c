//! Who may sign in: residents' password hashes and API tokens, whether an
//! operator disabled them, and the operator's token, in `HOME/accounts.json`.
//!
//! Passwords are kept as argon2id hashes; tokens (random, 256 bits) as
//! their SHA-256. The file is rewritten atomically on every change, by the
//! one process that holds the home's store (the store's lock guarantees
//! there is only one), from the one copy that process keeps in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use domicile_store::ResidentName;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Shorter passwords are refused: they fall to guessing.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longer ones are refused too: hashing them would be work for nothing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is corrupt ({detail}); restore it from a backup, or move it away and set new passwords")]
    Corrupt { path: String, detail: String },
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters (and at most {MAX_PASSWORD_BYTES} bytes)")]
    WeakPassword,
    #[error("no account for resident `{0}`")]
    UnknownResident(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    #[serde(default)]
    residents: BTreeMap<ResidentName, Account>,
    /// SHA-256 (hex) of the operator's token, once one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operator_token_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Account {
    /// argon2id, PHC string format.
    password_hash: String,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    tokens: Vec<StoredToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredToken {
    id: String,
    label: String,
    sha256: String,
    created_ms: u64,
}

/// An API token as its owner sees it in a list: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub label: String,
    pub created_ms: u64,
}

/// The accounts of a home.
pub struct Accounts {
    path: PathBuf,
    file: Mutex<AccountsFile>,
    /// A hash to verify against when the name is unknown, so that a wrong
    /// name costs as long as a wrong password and does not reveal itself.
    /// Made on first need (argon2 is slow on purpose, and a CLI command
    /// that signs nobody in should not pay for it).
    decoy_hash: std::sync::OnceLock<String>,
}

/// 256 random bits, hex, with a prefix saying what the secret is for.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// An initial password a person can type: 20 characters of an unambiguous alphabet.
pub fn new_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    let chars: String = bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    // Groups of five read more easily aloud or from paper.
    chars.as_bytes().chunks(5).map(|c| std::str::from_utf8(c).expect("ascii")).collect::<Vec<_>>().join("-")
}

/// The SHA-256 (hex) a secret is kept as.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether a password may be set (length only: it is the person's choice).
pub fn check_password(password: &str) -> Result<(), AccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::WeakPassword);
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String, AccountError> {
    check_password(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

impl Accounts {
    pub fn open(path: impl Into<PathBuf>) -> Result<Accounts, AccountError> {
        let path = path.into();
        let io = |source| AccountError::Io { path: path.display().to_string(), source };
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| AccountError::Corrupt { path: path.display().to_string(), detail: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => AccountsFile::default(),
            Err(e) => return Err(io(e)),
        };
        Ok(Accounts { path, file: Mutex::new(file), decoy_hash: std::sync::OnceLock::new() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self) -> std::sync::MutexGuard<'_, AccountsFile> {
        // A panic while holding the lock cannot leave the file half-changed
        // on disk (writes are atomic), so the in-memory copy is still usable.
        self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn change<T>(&self, edit: impl FnOnce(&mut AccountsFile) -> Result<T, AccountError>) -> Result<T, AccountError> {
        let mut file = self.file();
        let mut edited = AccountsFile {
            residents: file.residents.clone(),
            operator_token_sha256: file.operator_token_sha256.clone(),
        };
        let result = edit(&mut edited)?;
        let bytes = serde_json::to_vec_pretty(&edited).expect("accounts serialise");
        domicile_package::write_atomically(&self.path, &bytes)
            .map_err(|source| AccountError::Io { path: self.path.display().to_string(), source })?;
        *file = edited;
        Ok(result)
    }

    /// Sets a resident's password, creating their account if needed.
    pub fn set_password(&self, resident: &ResidentName, password: &str) -> Result<(), AccountError> {
        let hash = hash_password(password)?;
        self.change(|f| {
            match f.residents.get_mut(resident) {
                Some(account) => account.password_hash = hash,
                None => {
                    f.residents
                        .insert(resident.clone(), Account { password_hash: hash, disabled: false, tokens: Vec::new() });
                }
            }
            Ok(())
        })
    }

    /// Makes the decoy hash now, so that the first sign-in with an unknown
    /// name takes no longer than the others (a server calls it at start).
    pub fn prepare_sign_ins(&self) {
        self.decoy_hash();
    }

    fn decoy_hash(&self) -> &str {
        // Hashing a fresh random secret only fails if argon2 itself does;
        // an empty decoy then matches nothing, which is still a refusal.
        self.decoy_hash.get_or_init(|| hash_password(&new_secret("decoy-")).unwrap_or_default())
    }

    /// The resident whose name and password these are, if the account is
    /// enabled. Slow on purpose (argon2): call it off the async threads.
    pub fn sign_in(&self, name: &str, password: &str) -> Option<ResidentName> {
        let account =
            name.parse::<ResidentName>().ok().and_then(|n| self.file().residents.get(&n).map(|a| (n, a.clone())));
        match account {
            Some((name, account)) => {
                (password_matches(&account.password_hash, password) && !account.disabled).then_some(name)
            }
            None => {
                password_matches(self.decoy_hash(), password);
                None
            }
        }
    }

    pub fn has_account(&self, resident: &ResidentName) -> bool {
        self.file().residents.contains_key(resident)
    }

    /// Whether the resident may use the server now.
    /// A resident's account as it is kept (argon2 hash, token hashes,
    /// never a secret), for the cluster's copy; none without an account.
    pub fn account_record(&self, resident: &ResidentName) -> Option<Vec<u8>> {
        self.file().residents.get(resident).map(|a| serde_json::to_vec(a).expect("accounts serialise"))
    }

    /// Takes a resident's account from the cluster's copy (a node taking
    /// the resident over), replacing this home's, if any.
    pub fn adopt_account_record(&self, resident: &ResidentName, record: &[u8]) -> Result<(), AccountError> {
        let account: Account = serde_json::from_slice(record).map_err(|e| AccountError::Corrupt {
            path: format!("the cluster's account of {resident}"),
            detail: e.to_string(),
        })?;
        self.change(|f| {
            f.residents.insert(resident.clone(), account);
            Ok(())
        })
    }

    pub fn is_enabled(&self, resident: &ResidentName) -> bool {
        self.file().residents.get(resident).is_some_and(|a| !a.disabled)
    }

    pub fn set_disabled(&self, resident: &ResidentName, disabled: bool) -> Result<(), AccountError> {
        self.change(|f| {
            let account =
                f.residents.get_mut(resident).ok_or_else(|| AccountError::UnknownResident(resident.to_string()))?;
            account.disabled = disabled;
            Ok(())
        })
    }

    pub fn remove(&self, resident: &ResidentName) -> Result<(), AccountError> {
        self.change(|f| {
            f.residents.remove(resident);
            Ok(())
        })
    }

    /// A new API token for scripts; the secret is shown once, here.
    pub fn create_token(
        &self,
        resident: &ResidentName,
        label: &str,
        now_ms: u64,
    ) -> Result<(TokenInfo, String), AccountError> {
        let secret = new_secret("dmt_");
        let id = secret[4..16].to_owned();
        let stored =
            StoredToken { id: id.clone(), label: label.to_owned(), sha256: sha256_hex(&secret), created_ms: now_ms };
        self.change(|f| {
            let account =
                f.residents.get_mut(resident).ok_or_else(|| AccountError::UnknownResident(resident.to_string()))?;
            account.tokens.push(stored);
            Ok(())
        })?;
        Ok((TokenInfo { id, label: label.to_owned(), created_ms: now_ms }, secret))
    }

    pub fn tokens(&self, resident: &ResidentName) -> Vec<TokenInfo> {
        self.file()
            .residents
            .get(resident)
            .map(|a| {
                a.tokens
                    .iter()
                    .map(|t| TokenInfo { id: t.id.clone(), label: t.label.clone(), created_ms: t.created_ms })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Deletes one of the resident's tokens; false if they have none with that id.
    pub fn revoke_token(&self, resident: &ResidentName, id: &str) -> Result<bool, AccountError> {
        self.change(|f| {
            let Some(account) = f.residents.get_mut(resident) else { return Ok(false) };
            let before = account.tokens.len();
            account.tokens.retain(|t| t.id != id);
            Ok(account.tokens.len() != before)
        })
    }

    /// The enabled resident an API token belongs to.
    pub fn resident_of_token(&self, secret: &str) -> Option<ResidentName> {
        let digest = sha256_hex(secret);
        self.file()
            .residents
            .iter()
            .find(|(_, a)| !a.disabled && a.tokens.iter().any(|t| t.sha256 == digest))
            .map(|(name, _)| name.clone())
    }

    /// Makes a new operator token, replacing any earlier one.
    pub fn new_operator_token(&self) -> Result<String, AccountError> {
        let secret = new_secret("dmo_");
        let digest = sha256_hex(&secret);
        self.change(|f| {
            f.operator_token_sha256 = Some(digest);
            Ok(())
        })?;
        Ok(secret)
    }

    /// The SHA-256 (hex) of the resident's API tokens (what a cluster
    /// indexes to route their requests).
    pub fn token_sha256s(&self, resident: &ResidentName) -> Vec<String> {
        self.file()
            .residents
            .get(resident)
            .map(|a| a.tokens.iter().map(|t| t.sha256.clone()).collect())
            .unwrap_or_default()
    }

    /// The SHA-256 (hex) of one of the resident's API tokens, by its id.
    pub fn token_sha256(&self, resident: &ResidentName, id: &str) -> Option<String> {
        let file = self.file();
        file.residents.get(resident)?.tokens.iter().find(|t| t.id == id).map(|t| t.sha256.clone())
    }

    /// The SHA-256 (hex) of the operator's token, once one was made.
    pub fn operator_token_sha256(&self) -> Option<String> {
        self.file().operator_token_sha256.clone()
    }

    pub fn has_operator_token(&self) -> bool {
        self.file().operator_token_sha256.is_some()
    }

    pub fn is_operator_token(&self, secret: &str) -> bool {
        self.file().operator_token_sha256.as_deref() == Some(sha256_hex(secret).as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(dir.path().join("accounts.json")).unwrap();
        (dir, accounts)
    }

    #[test]
    fn passwords_sign_in_only_their_resident_and_survive_reopening() {
        let (dir, accounts) = accounts();
        let ana: ResidentName = "ana".parse().unwrap();
        accounts.set_password(&ana, "correct horse battery").unwrap();
        assert_eq!(accounts.sign_in("ana", "correct horse battery"), Some(ana.clone()));
        assert_eq!(accounts.sign_in("ana", "correct horse batterY"), None);
        assert_eq!(accounts.sign_in("bob", "correct horse battery"), None);
        assert_eq!(accounts.sign_in("../etc", "correct horse battery"), None);
        let text = std::fs::read_to_string(dir.path().join("accounts.json")).unwrap();
        assert!(!text.contains("correct horse"), "the password itself is never stored");
        assert!(text.contains("$argon2id$"));
        let reopened = Accounts::open(dir.path().join("accounts.json")).unwrap();
        assert_eq!(reopened.sign_in("ana", "correct horse battery"), Some(ana));
    }

    #[test]
    fn short_passwords_are_refused() {
        let (_dir, accounts) = accounts();
        assert!(matches!(accounts.set_password(&"ana".parse().unwrap(), "short"), Err(AccountError::WeakPassword)));
    }

    #[test]
    fn disabled_residents_cannot_sign_in_nor_use_tokens() {
        let (_dir, accounts) = accounts();
        let ana: ResidentName = "ana".parse().unwrap();
        accounts.set_password(&ana, "a long password").unwrap();
        let (_, token) = accounts.create_token(&ana, "script", 1).unwrap();
        assert_eq!(accounts.resident_of_token(&token), Some(ana.clone()));
        accounts.set_disabled(&ana, true).unwrap();
        assert_eq!(accounts.sign_in("ana", "a long password"), None);
        assert_eq!(accounts.resident_of_token(&token), None);
        accounts.set_disabled(&ana, false).unwrap();
        assert_eq!(accounts.resident_of_token(&token), Some(ana));
    }

    #[test]
    fn tokens_are_stored_hashed_listed_without_secret_and_revocable() {
        let (dir, accounts) = accounts();
        let ana: ResidentName = "ana".parse().unwrap();
        accounts.set_password(&ana, "a long password").unwrap();
        let (info, token) = accounts.create_token(&ana, "backup script", 7).unwrap();
        let text = std::fs::read_to_string(dir.path().join("accounts.json")).unwrap();
        assert!(!text.contains(&token));
        assert_eq!(accounts.tokens(&ana), vec![info.clone()]);
        assert_eq!(accounts.resident_of_token("dmt_0000"), None);
        assert!(accounts.revoke_token(&ana, &info.id).unwrap());
        assert_eq!(accounts.resident_of_token(&token), None);
        assert!(!accounts.revoke_token(&ana, &info.id).unwrap());
    }

    #[test]
    fn the_operator_token_is_replaced_by_a_new_one() {
        let (_dir, accounts) = accounts();
        assert!(!accounts.is_operator_token(""));
        let first = accounts.new_operator_token().unwrap();
        assert!(accounts.is_operator_token(&first));
        let second = accounts.new_operator_token().unwrap();
        assert!(!accounts.is_operator_token(&first));
        assert!(accounts.is_operator_token(&second));
    }

    #[test]
    fn a_corrupt_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("accounts.json"), b"{ not json").unwrap();
        let err = Accounts::open(dir.path().join("accounts.json")).err().unwrap();
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert_eq!(std::fs::read(dir.path().join("accounts.json")).unwrap(), b"{ not json");
    }
}
