//! Signed catalogues: a directory of packages and an index of them, signed
//! by the catalogue's key.
//!
//! ```text
//! DIR/index.json            the apps, their versions, each version's package
//!                           (path, sha256, size) and permissions summary
//! DIR/index.sig             "domicile-catalogue-signature-v1", the key, the signature
//! DIR/packages/*.dpkg       the signed packages
//! ```
//!
//! The signature covers `sha256("domicile-catalogue-v1" || sha256(index.json))`
//! and is checked against a key the home trusts for the `catalogue` role
//! before the index is parsed. A package fetched through a catalogue must
//! have the sha256 the index lists, and its own signature must verify under
//! the publisher key the index lists for its app.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use domicile_manifest::{AppId, Egress, Manifest, ManifestError, Permission, Scratch, World};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{sha256, unseal, write_atomically, PackageError, PublicKey, Role, SecretKey, TrustStore};

pub const INDEX_FILE: &str = "index.json";
pub const SIGNATURE_FILE: &str = "index.sig";
pub const PACKAGES_DIR: &str = "packages";
const FORMAT: &str = "domicile-catalogue-v1";
const SIGNATURE_HEADER: &str = "domicile-catalogue-signature-v1";
const MAX_INDEX_BYTES: u64 = 4 * 1024 * 1024;
const MAX_PACKAGE_BYTES: u64 = (crate::MAX_MANIFEST_BYTES + crate::MAX_COMPONENT_BYTES + 1024) as u64;

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0} is not a domicile catalogue (it has no {INDEX_FILE} and {SIGNATURE_FILE})")]
    NotACatalogue(String),
    #[error("the catalogue's {SIGNATURE_FILE} is malformed: {0}")]
    BadSignatureFile(&'static str),
    #[error("the catalogue is signed by {0}, which this home does not trust for catalogues")]
    UntrustedKey(PublicKey),
    #[error("the catalogue is signed by {0}, a key this home has revoked")]
    RevokedKey(PublicKey),
    #[error("the catalogue's index does not match its signature: it was altered after signing")]
    BadSignature,
    #[error("the catalogue's index is invalid: {0}")]
    Malformed(String),
    #[error("{file}: {source}")]
    Package { file: String, source: PackageError },
    #[error("{file}: {source}")]
    Manifest { file: String, source: ManifestError },
    #[error("the package of {app} {version} is not the one the catalogue's index lists (its sha256 differs): it was replaced after the index was signed; nothing was installed")]
    DigestMismatch { app: AppId, version: semver::Version },
    #[error("the catalogue lists {listed}, but its package is {actual}: the index does not describe its packages; nothing was installed")]
    NotTheListedApp { listed: String, actual: String },
    #[error("no app `{0}` in the catalogue")]
    NotListed(AppId),
    #[error("the catalogue has no version {version} of {app}; it has {available}")]
    UnknownVersion { app: AppId, version: semver::Version, available: String },
    #[error("{0}")]
    Conflict(String),
    #[error("no app `{id}` in your catalogues{}", .problems.iter().map(|p| format!("; {p}")).collect::<String>())]
    NotInCatalogues { id: AppId, problems: Vec<String> },
}

/// The signed index of a catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueIndex {
    pub format: String,
    pub name: String,
    pub apps: Vec<CatalogueApp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueApp {
    pub id: AppId,
    pub name: String,
    pub description: String,
    pub world: World,
    /// Every version of the app is signed by this key.
    pub publisher: PublicKey,
    /// Oldest first.
    pub versions: Vec<CatalogueVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueVersion {
    pub version: semver::Version,
    /// Relative to the catalogue directory: `packages/<file>.dpkg`.
    pub package: String,
    pub sha256: String,
    pub size: u64,
    pub permissions: Vec<Permission>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch: Option<Scratch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Egress>,
}

impl CatalogueApp {
    pub fn latest(&self) -> &CatalogueVersion {
        self.versions.iter().max_by(|a, b| a.version.cmp(&b.version)).expect("an app has at least one version")
    }

    pub fn version(&self, version: &semver::Version) -> Result<&CatalogueVersion, CatalogueError> {
        self.versions.iter().find(|v| &v.version == version).ok_or_else(|| CatalogueError::UnknownVersion {
            app: self.id.clone(),
            version: version.clone(),
            available: self.versions.iter().map(|v| v.version.to_string()).collect::<Vec<_>>().join(", "),
        })
    }
}

pub(crate) fn signed_digest(index: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(FORMAT.as_bytes());
    h.update(sha256(index));
    h.finalize().into()
}

/// The text of `index.sig` for an index: the signing key and its signature.
pub fn sign_index(index: &[u8], key: &SecretKey) -> String {
    let signature = key.sign(&signed_digest(index));
    format!("{SIGNATURE_HEADER}\nkey {}\nsignature {}\n", key.public(), hex::encode(signature))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CatalogueError + '_ {
    move |source| CatalogueError::Io { path: path.display().to_string(), source }
}

/// Reads at most `max` bytes of a regular file (see [`crate::files`]).
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, CatalogueError> {
    crate::files::read_regular(path, max).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput => CatalogueError::Malformed(format!("{}: {e}", path.display())),
        _ => io_error(path)(e),
    })
}

/// Writes the index of the packages in `dir/packages`, signed with `key`.
/// Each package must verify under the key it names, and all versions of an
/// app must come from one publisher.
pub fn build_catalogue(dir: &Path, name: &str, key: &SecretKey) -> Result<CatalogueIndex, CatalogueError> {
    let packages_dir = dir.join(PACKAGES_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&packages_dir)
        .map_err(io_error(&packages_dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_error(&packages_dir))?;
    files.retain(|p| p.extension().is_some_and(|e| e == "dpkg"));
    files.sort();
    let mut apps: BTreeMap<AppId, CatalogueApp> = BTreeMap::new();
    for path in files {
        let file_name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let relative = format!("{PACKAGES_DIR}/{file_name}");
        check_package_path(&relative)?;
        let bytes = read_bounded(&path, MAX_PACKAGE_BYTES)?;
        let package_error = |source| CatalogueError::Package { file: relative.clone(), source };
        let sealed = unseal(&bytes).map_err(package_error)?;
        let publisher = *sealed.claimed_publisher();
        let verified = sealed.verify_with(&publisher).map_err(package_error)?;
        let manifest = Manifest::from_bytes(verified.manifest_bytes())
            .map_err(|source| CatalogueError::Manifest { file: relative.clone(), source })?;
        let version = CatalogueVersion {
            version: manifest.version.clone(),
            package: relative.clone(),
            sha256: hex::encode(sha256(&bytes)),
            size: bytes.len() as u64,
            permissions: manifest.permissions.clone(),
            scratch: manifest.scratch.clone(),
            egress: manifest.egress.clone(),
        };
        let app = apps.entry(manifest.id.clone()).or_insert_with(|| CatalogueApp {
            id: manifest.id.clone(),
            name: manifest.name.clone(),
            description: manifest.description.clone(),
            world: manifest.world,
            publisher,
            versions: Vec::new(),
        });
        if app.publisher != publisher {
            return Err(CatalogueError::Conflict(format!(
                "{relative}: {} is published by {} in another package, not by {publisher}",
                manifest.id, app.publisher
            )));
        }
        if app.versions.iter().any(|v| v.version == manifest.version) {
            return Err(CatalogueError::Conflict(format!(
                "{relative}: two packages of {} {}",
                manifest.id, manifest.version
            )));
        }
        // The newest version describes the app.
        if app.versions.iter().all(|v| v.version < manifest.version) {
            app.name = manifest.name.clone();
            app.description = manifest.description.clone();
            app.world = manifest.world;
        }
        app.versions.push(version);
    }
    for app in apps.values_mut() {
        app.versions.sort_by(|a, b| a.version.cmp(&b.version));
    }
    let index = CatalogueIndex { format: FORMAT.into(), name: name.to_owned(), apps: apps.into_values().collect() };
    let mut bytes = serde_json::to_vec_pretty(&index).expect("index serialises");
    bytes.push(b'\n');
    let sig_text = sign_index(&bytes, key);
    let index_path = dir.join(INDEX_FILE);
    write_atomically(&index_path, &bytes).map_err(io_error(&index_path))?;
    let sig_path = dir.join(SIGNATURE_FILE);
    write_atomically(&sig_path, sig_text.as_bytes()).map_err(io_error(&sig_path))?;
    Ok(index)
}

/// `packages/<name>.dpkg`, the name of plain characters: an index cannot
/// point outside its directory.
fn check_package_path(path: &str) -> Result<(), CatalogueError> {
    let ok = path.strip_prefix("packages/").and_then(|rest| rest.strip_suffix(".dpkg")).is_some_and(|stem| {
        !stem.is_empty()
            && !stem.starts_with('.')
            && stem.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    });
    if ok {
        Ok(())
    } else {
        Err(CatalogueError::Malformed(format!(
            "package path `{}` must be packages/<name>.dpkg",
            path.chars().take(100).collect::<String>()
        )))
    }
}

/// A package fetched from a catalogue, verified, with its signed manifest.
#[derive(Debug)]
pub struct Fetched<'a> {
    pub bytes: Vec<u8>,
    pub app: &'a CatalogueApp,
    pub version: &'a CatalogueVersion,
    pub manifest: Manifest,
}

/// A catalogue whose index verified under a trusted catalogue key.
#[derive(Debug, Clone)]
pub struct Catalogue {
    dir: PathBuf,
    key: PublicKey,
    index: CatalogueIndex,
}

impl Catalogue {
    /// Verifies the index signature against the trust store, then parses it.
    pub fn open(dir: &Path, trust: &TrustStore) -> Result<Catalogue, CatalogueError> {
        let (index_path, sig_path) = (dir.join(INDEX_FILE), dir.join(SIGNATURE_FILE));
        if !index_path.is_file() || !sig_path.is_file() {
            return Err(CatalogueError::NotACatalogue(dir.display().to_string()));
        }
        let (key, signature) = parse_signature_file(&read_bounded(&sig_path, 1024)?)?;
        if trust.is_revoked(&key) {
            return Err(CatalogueError::RevokedKey(key));
        }
        if trust.trusted_as(&key, Role::Catalogue).is_none() {
            return Err(CatalogueError::UntrustedKey(key));
        }
        let bytes = read_bounded(&index_path, MAX_INDEX_BYTES)?;
        key.verify_strict(&signed_digest(&bytes), &signature).map_err(|_| CatalogueError::BadSignature)?;
        let index: CatalogueIndex =
            serde_json::from_slice(&bytes).map_err(|e| CatalogueError::Malformed(e.to_string()))?;
        if index.format != FORMAT {
            return Err(CatalogueError::Malformed(format!("format `{}`, expected `{FORMAT}`", index.format)));
        }
        for app in &index.apps {
            if app.versions.is_empty() {
                return Err(CatalogueError::Malformed(format!("{} lists no version", app.id)));
            }
            for v in &app.versions {
                check_package_path(&v.package)?;
            }
        }
        Ok(Catalogue { dir: dir.to_owned(), key, index })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn key(&self) -> &PublicKey {
        &self.key
    }
    /// Its files, relative to its folder: the index first, its signature,
    /// then the package of every version it lists (paths checked on open).
    pub fn files(&self) -> Vec<String> {
        let packages = self.index.apps.iter().flat_map(|a| a.versions.iter().map(|v| v.package.clone()));
        [INDEX_FILE.to_owned(), SIGNATURE_FILE.to_owned()].into_iter().chain(packages).collect()
    }

    pub fn index(&self) -> &CatalogueIndex {
        &self.index
    }

    pub fn app(&self, id: &AppId) -> Option<&CatalogueApp> {
        self.index.apps.iter().find(|a| &a.id == id)
    }

    /// The package of `id` at `version` (default: the latest), checked
    /// against the digest the index lists, verified under the publisher
    /// key the index lists for the app, and proven to be that app at that
    /// version by its signed manifest (an index could list one app with
    /// another's package). Returns the bytes, the listing, and the signed
    /// manifest: what a consent screen must show.
    pub fn fetch(
        &self,
        id: &AppId,
        version: Option<&semver::Version>,
        trust: &TrustStore,
    ) -> Result<Fetched<'_>, CatalogueError> {
        let app = self.app(id).ok_or_else(|| CatalogueError::NotListed(id.clone()))?;
        let listed = match version {
            Some(v) => app.version(v)?,
            None => app.latest(),
        };
        let bytes = read_bounded(&self.package_path(&listed.package)?, MAX_PACKAGE_BYTES)?;
        if hex::encode(sha256(&bytes)) != listed.sha256 {
            return Err(CatalogueError::DigestMismatch { app: id.clone(), version: listed.version.clone() });
        }
        let package_error = |source| CatalogueError::Package { file: listed.package.clone(), source };
        let verified = unseal(&bytes)
            .and_then(|sealed| sealed.verify_vouched(trust, &app.publisher, "the catalogue lists for this app"))
            .map_err(package_error)?;
        let manifest = Manifest::from_bytes(verified.manifest_bytes())
            .map_err(|source| CatalogueError::Manifest { file: listed.package.clone(), source })?;
        if &manifest.id != id || manifest.version != listed.version {
            return Err(CatalogueError::NotTheListedApp {
                listed: format!("{id} {}", listed.version),
                actual: format!("{} {}", manifest.id, manifest.version),
            });
        }
        Ok(Fetched { bytes, app, version: listed, manifest })
    }

    /// A package's path, which must stay inside the catalogue directory
    /// (a symbolic link must not lead elsewhere).
    fn package_path(&self, relative: &str) -> Result<PathBuf, CatalogueError> {
        let path = self.dir.join(relative);
        let dir = std::fs::canonicalize(&self.dir).map_err(io_error(&self.dir))?;
        let resolved = std::fs::canonicalize(&path).map_err(io_error(&path))?;
        if !resolved.starts_with(&dir) {
            return Err(CatalogueError::Malformed(format!("{relative} leads outside the catalogue directory")));
        }
        Ok(resolved)
    }
}

fn parse_signature_file(bytes: &[u8]) -> Result<(PublicKey, [u8; 64]), CatalogueError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CatalogueError::BadSignatureFile("it is not text"))?;
    let mut lines = text.lines();
    if lines.next() != Some(SIGNATURE_HEADER) {
        return Err(CatalogueError::BadSignatureFile("it does not start with the signature header"));
    }
    let key = lines
        .next()
        .and_then(|l| l.strip_prefix("key "))
        .and_then(|k| k.parse().ok())
        .ok_or(CatalogueError::BadSignatureFile("no valid `key` line"))?;
    let signature = lines
        .next()
        .and_then(|l| l.strip_prefix("signature "))
        .and_then(|s| hex::decode(s.trim()).ok())
        .and_then(|v| <[u8; 64]>::try_from(v).ok())
        .ok_or(CatalogueError::BadSignatureFile("no valid `signature` line"))?;
    Ok((key, signature))
}

/// A catalogue a home installs from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueSource {
    pub dir: PathBuf,
    /// The key the index was signed with when the source was added.
    pub key: PublicKey,
    pub name: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SourcesFile {
    sources: Vec<CatalogueSource>,
}

/// The catalogues of a home, backed by one JSON file.
#[derive(Debug)]
pub struct CatalogueSources {
    path: PathBuf,
    file: SourcesFile,
}

impl CatalogueSources {
    pub fn open(path: impl Into<PathBuf>) -> Result<CatalogueSources, CatalogueError> {
        let path = path.into();
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| CatalogueError::Malformed(format!("{} is corrupt: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SourcesFile::default(),
            Err(source) => return Err(CatalogueError::Io { path: path.display().to_string(), source }),
        };
        Ok(CatalogueSources { path, file })
    }

    pub fn list(&self) -> &[CatalogueSource] {
        &self.file.sources
    }

    /// Adds a catalogue that verified (replacing an earlier entry for the same directory).
    pub fn add(&mut self, catalogue: &Catalogue) -> Result<(), CatalogueError> {
        let dir = std::fs::canonicalize(catalogue.dir()).map_err(io_error(catalogue.dir()))?;
        self.file.sources.retain(|s| s.dir != dir);
        self.file.sources.push(CatalogueSource { dir, key: *catalogue.key(), name: catalogue.index().name.clone() });
        let bytes = serde_json::to_vec_pretty(&self.file).expect("sources serialise");
        write_atomically(&self.path, &bytes).map_err(io_error(&self.path))
    }

    /// Opens (and so verifies) every source.
    pub fn open_all(&self, trust: &TrustStore) -> Vec<(CatalogueSource, Result<Catalogue, CatalogueError>)> {
        self.file.sources.iter().map(|s| (s.clone(), Catalogue::open(&s.dir, trust))).collect()
    }

    /// The first catalogue, verified now, that lists `id`. When none does,
    /// the error also names the catalogues that could not be verified.
    pub fn find(&self, trust: &TrustStore, id: &AppId) -> Result<Catalogue, CatalogueError> {
        let mut problems = Vec::new();
        for (source, opened) in self.open_all(trust) {
            match opened {
                Ok(catalogue) if catalogue.app(id).is_some() => return Ok(catalogue),
                Ok(_) => {}
                Err(e) => problems.push(format!("catalogue {} cannot be used: {e}", source.dir.display())),
            }
        }
        Err(CatalogueError::NotInCatalogues { id: id.clone(), problems })
    }

    /// The sources that verify now (the others offer nothing).
    pub fn verified(&self, trust: &TrustStore) -> Vec<Catalogue> {
        self.open_all(trust).into_iter().filter_map(|(_, c)| c.ok()).collect()
    }
}

/// What `catalogues` offer as an update of `id` at `installed`, published
/// by `publisher`. A catalogue that lists the app under another publisher
/// is not a source of updates for it. Takes catalogues opened once, so a
/// list of apps does not verify every catalogue again for each app.
pub fn update_offer(catalogues: &[Catalogue], id: &AppId, publisher: &str, installed: &semver::Version) -> UpdateOffer {
    let mut best: Option<(semver::Version, &Catalogue)> = None;
    let mut other_publisher = None;
    for catalogue in catalogues {
        let Some(listed) = catalogue.app(id) else { continue };
        let latest = listed.latest().version.clone();
        if &latest <= installed {
            continue;
        }
        if listed.publisher.to_string() != publisher {
            other_publisher = Some(UpdateOffer::OtherPublisher {
                catalogue: catalogue.index().name.clone(),
                key: listed.publisher,
                version: latest,
            });
            continue;
        }
        if best.as_ref().is_none_or(|(v, _)| v < &latest) {
            best = Some((latest, catalogue));
        }
    }
    match (best, other_publisher) {
        (Some((version, catalogue)), _) => UpdateOffer::Newer { version, catalogue: catalogue.clone() },
        (None, Some(refused)) => refused,
        (None, None) => UpdateOffer::UpToDate,
    }
}

/// What a home's catalogues offer for an installed app.
pub enum UpdateOffer {
    /// A newer version from the app's own publisher, in `catalogue`.
    Newer {
        version: semver::Version,
        catalogue: Catalogue,
    },
    UpToDate,
    /// Only another publisher offers a newer version: not an update.
    OtherPublisher {
        catalogue: String,
        key: PublicKey,
        version: semver::Version,
    },
}
