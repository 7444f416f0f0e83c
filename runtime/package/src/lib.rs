//! Signed app packages: the file format, its digests, ed25519 signing and
//! verification, signed catalogues, and the trust store of keys.
//!
//! A package binds the manifest bytes and the component bytes under one
//! ed25519 signature over a domain-separated digest:
//! `sha256("domicile-package-v1" || sha256(manifest) || sha256(component))`.
//! The signature is checked with `verify_strict` against a key from the
//! trust store, never against the key the package carries (that one only
//! says which trusted key to use). Nothing in the package is interpreted
//! before it verifies: [`VerifiedPackage`] is the only way to reach the
//! manifest and component bytes, and it can only be made by verification.
//!
//! A [`Catalogue`] is a directory of packages with a signed index; trusting
//! a catalogue's key means trusting the publishers it lists for their apps.

mod catalogue;
pub mod files;
mod keys;
mod trust;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use catalogue::{
    build_catalogue, sign_index, update_offer, Catalogue, CatalogueApp, CatalogueError, CatalogueIndex,
    CatalogueSource, CatalogueSources, CatalogueVersion, Fetched, UpdateOffer,
};
pub use keys::{KeyError, PublicKey, SecretKey};
pub use trust::{Role, TrustError, TrustStore, TrustedKey};

/// Leads every package file, and separates the signature domain from any
/// other use of the same key.
const MAGIC: &[u8; 20] = b"domicile-package-v1\n";
const DOMAIN: &[u8] = b"domicile-package-v1";

/// Manifests are small text files; this refuses a hostile length early.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;
/// Components larger than this are refused before any work is done on them.
pub const MAX_COMPONENT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("not a domicile package (it does not start with the package header)")]
    NotAPackage,
    #[error("package is truncated or malformed: {0}")]
    Malformed(&'static str),
    #[error("package {what} is {len} bytes, over the limit of {max}")]
    TooLarge { what: &'static str, len: usize, max: usize },
    #[error("package is signed by {0}, which is not in the trust store")]
    UntrustedPublisher(PublicKey),
    #[error("package signature does not verify: its manifest, component or signature was altered after signing")]
    BadSignature,
    #[error("package is signed by {0}, a key this home has revoked: it is not installed or updated")]
    RevokedPublisher(PublicKey),
    #[error("package is signed by {claimed}, but {expected} is the publisher {why}")]
    WrongPublisher { claimed: PublicKey, expected: PublicKey, why: &'static str },
}

/// The digests a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    pub manifest: [u8; 32],
    pub component: [u8; 32],
}

impl Digests {
    pub fn of(manifest: &[u8], component: &[u8]) -> Digests {
        Digests { manifest: sha256(manifest), component: sha256(component) }
    }

    /// The 32 bytes that are signed.
    fn signed_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(self.manifest);
        h.update(self.component);
        h.finalize().into()
    }
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Writes a signed package binding `manifest` and `component`.
///
/// Layout: magic (20) · publisher key (32) · signature (64) ·
/// manifest length (u32 LE) · manifest · component length (u64 LE) · component.
pub fn seal(manifest: &[u8], component: &[u8], key: &SecretKey) -> Result<Vec<u8>, PackageError> {
    check_len("manifest", manifest.len(), MAX_MANIFEST_BYTES)?;
    check_len("component", component.len(), MAX_COMPONENT_BYTES)?;
    let signature = key.sign(&Digests::of(manifest, component).signed_digest());
    let mut out = Vec::with_capacity(MAGIC.len() + 32 + 64 + 4 + manifest.len() + 8 + component.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&key.public().to_bytes());
    out.extend_from_slice(&signature);
    out.extend_from_slice(&(manifest.len() as u32).to_le_bytes());
    out.extend_from_slice(manifest);
    out.extend_from_slice(&(component.len() as u64).to_le_bytes());
    out.extend_from_slice(component);
    Ok(out)
}

fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), PackageError> {
    if len > max {
        return Err(PackageError::TooLarge { what, len, max });
    }
    Ok(())
}

/// A package whose framing was read but whose signature is not yet checked.
/// Its contents are deliberately not accessible.
pub struct SealedPackage<'a> {
    publisher: PublicKey,
    signature: [u8; 64],
    manifest: &'a [u8],
    component: &'a [u8],
}

/// Splits a package into its parts without interpreting any of them.
pub fn unseal(bytes: &[u8]) -> Result<SealedPackage<'_>, PackageError> {
    let mut r = Reader(bytes);
    if r.take(MAGIC.len()).ok() != Some(&MAGIC[..]) {
        return Err(PackageError::NotAPackage);
    }
    let publisher = PublicKey::from_bytes(r.array::<32>()?)
        .map_err(|_| PackageError::Malformed("publisher key is not a valid ed25519 point"))?;
    let signature = r.array::<64>()?;
    let manifest_len = u32::from_le_bytes(r.array::<4>()?) as usize;
    check_len("manifest", manifest_len, MAX_MANIFEST_BYTES)?;
    let manifest = r.take(manifest_len)?;
    let component_len = u64::from_le_bytes(r.array::<8>()?);
    let component_len = usize::try_from(component_len).unwrap_or(usize::MAX);
    check_len("component", component_len, MAX_COMPONENT_BYTES)?;
    let component = r.take(component_len)?;
    if !r.0.is_empty() {
        return Err(PackageError::Malformed("trailing bytes after the component"));
    }
    Ok(SealedPackage { publisher, signature, manifest, component })
}

impl<'a> SealedPackage<'a> {
    /// The key the package claims to be signed by (not yet proven).
    pub fn claimed_publisher(&self) -> &PublicKey {
        &self.publisher
    }

    /// Verifies against the trust store: the claimed key must be trusted
    /// as a publisher (and not revoked), and the signature must verify
    /// under the trusted copy of it.
    pub fn verify(self, trust: &TrustStore) -> Result<VerifiedPackage, PackageError> {
        if trust.is_revoked(&self.publisher) {
            return Err(PackageError::RevokedPublisher(self.publisher));
        }
        let trusted = trust
            .trusted_as(&self.publisher, Role::Publisher)
            .ok_or(PackageError::UntrustedPublisher(self.publisher))?;
        self.verify_with(&trusted.key)
    }

    /// Verifies against a publisher key vouched for by something already
    /// verified: a trusted catalogue's signed index, or the key an app was
    /// first installed with (for its updates). A revoked key is refused
    /// whoever vouches for it.
    pub fn verify_vouched(
        self,
        trust: &TrustStore,
        vouched: &PublicKey,
        why: &'static str,
    ) -> Result<VerifiedPackage, PackageError> {
        if &self.publisher != vouched {
            return Err(PackageError::WrongPublisher { claimed: self.publisher, expected: *vouched, why });
        }
        if trust.is_revoked(vouched) {
            return Err(PackageError::RevokedPublisher(*vouched));
        }
        self.verify_with(vouched)
    }

    /// Verifies against one given key (for `domicile verify --key`, and for
    /// checking an update against the key an app was first installed with).
    pub fn verify_with(self, key: &PublicKey) -> Result<VerifiedPackage, PackageError> {
        let digests = Digests::of(self.manifest, self.component);
        key.verify_strict(&digests.signed_digest(), &self.signature).map_err(|_| PackageError::BadSignature)?;
        Ok(VerifiedPackage {
            publisher: *key,
            digests,
            manifest: self.manifest.to_vec(),
            component: self.component.to_vec(),
        })
    }
}

/// A package whose signature verified against a trusted key.
#[derive(Debug, Clone)]
pub struct VerifiedPackage {
    publisher: PublicKey,
    digests: Digests,
    manifest: Vec<u8>,
    component: Vec<u8>,
}

impl VerifiedPackage {
    pub fn publisher(&self) -> &PublicKey {
        &self.publisher
    }
    pub fn digests(&self) -> &Digests {
        &self.digests
    }
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest
    }
    pub fn component_bytes(&self) -> &[u8] {
        &self.component
    }
    /// Hex sha256 of the component: the key of its compiled artifact.
    pub fn component_digest_hex(&self) -> String {
        hex::encode(self.digests.component)
    }
}

/// Writes to a temporary file, syncs, then renames over `path`: a crash
/// leaves either the old or the new file, never half of one. Each call
/// writes its own uniquely named temporary file, so processes writing the
/// same path at once (homes sharing an artifact cache) each replace it
/// whole instead of truncating each other's file or renaming it away.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let prefix = format!(".{}.", path.file_name().unwrap_or_default().to_string_lossy());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // The file a plain `File::create` would make (0666 less the umask),
    // not tempfile's private 0600: a published catalogue is served as is.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PackageError> {
        if self.0.len() < n {
            return Err(PackageError::Malformed("it ends before the lengths it declares"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], PackageError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }
}

#[cfg(test)]
mod tests;
