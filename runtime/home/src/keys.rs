//! Trust and archives: trusting and revoking keys (every resident's apps
//! signed by a revoked key are held at once), restoring a resident from an
//! export (apps come back only as far as this home trusts their
//! publishers, and apps of a revoked key come back held), exporting one.

use std::io::{Read, Write};

use domicile_manifest::AppId;
use domicile_package::{PublicKey, Role, TrustStore, TrustedKey};
use domicile_store::{ExportSummary, Hold, ResidentName, ResidentSpace, RestoreReport};
use serde::Serialize;

use crate::{Home, Result};

/// An app put on hold because its publisher key was revoked.
#[derive(Debug, Clone, Serialize)]
pub struct HeldApp {
    pub resident: ResidentName,
    pub app: AppId,
}

/// Milliseconds since the epoch, as `2026-03-01 12:00:00` UTC.
pub fn format_ms(ms: u64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

impl Home {
    /// Trusts `key` for `roles` (publisher when none); a revoked key is
    /// trusted again. Returns the key as the trust store now has it.
    pub fn trust_key(&self, key: PublicKey, name: &str, roles: &[Role]) -> Result<TrustedKey> {
        let mut trust = self.trust()?;
        trust.add(key, name, roles)?;
        Ok(trust.find(&key).cloned().expect("the key was just added"))
    }

    /// Trusts `key` for nothing from now on, and holds every resident's
    /// apps it signed until each resident decides.
    pub fn revoke_key(&self, key: &PublicKey) -> Result<Vec<HeldApp>> {
        let now = self.now_ms();
        self.trust()?.revoke(key, now)?;
        self.hold_apps_signed_by(key, now)
    }

    /// Replaces the trust store with `bytes` (a node of a cluster taking the
    /// cluster's), once they read as one; the apps of keys it revokes that
    /// this one did not are held, as [`revoke_key`](Self::revoke_key) does.
    pub fn replace_trust(&self, bytes: &[u8]) -> Result<Vec<HeldApp>> {
        let before = self.trust()?;
        let after = TrustStore::from_bytes(self.trust_path(), bytes)?;
        domicile_package::write_atomically(&self.trust_path(), bytes)
            .map_err(|source| crate::HomeError::Io { path: self.trust_path(), source })?;
        let mut held = Vec::new();
        for newly in after.keys().iter().filter(|k| k.revoked_at_ms.is_some() && !before.is_revoked(&k.key)) {
            held.extend(self.hold_apps_signed_by(&newly.key, newly.revoked_at_ms.unwrap_or_else(|| self.now_ms()))?);
        }
        Ok(held)
    }

    /// Holds every resident's apps `key` signed, since `since_ms`.
    fn hold_apps_signed_by(&self, key: &PublicKey, now: u64) -> Result<Vec<HeldApp>> {
        let hold = Hold { reason: format!("its publisher key {key} was revoked on {}", format_ms(now)), since_ms: now };
        let mut held = Vec::new();
        for resident in self.store.residents()? {
            let space = self.store.resident(&resident)?;
            for app in space.hold_apps_of(&key.to_string(), &hold)? {
                held.push(HeldApp { resident: resident.clone(), app });
            }
        }
        Ok(held)
    }

    /// Rebuilds a resident from an export (under `as_name`, or the name in
    /// the archive), checking all of it; its apps come back only as far as
    /// this home trusts their publishers, held if their key was revoked.
    pub fn restore(
        &self,
        archive: impl Read,
        as_name: Option<&ResidentName>,
    ) -> Result<(ResidentSpace, RestoreReport)> {
        let trust = self.trust()?;
        let catalogues = self.catalogue_sources()?.verified(&trust);
        let vetting = domicile_host::ArchiveVetting {
            runtime: self.runtime()?,
            trust: &trust,
            catalogues: &catalogues,
            now_ms: self.now_ms(),
        };
        Ok(self.store.restore(archive, as_name, &vetting)?)
    }

    /// Everything of a resident, as the archive [`restore`](Self::restore) reads.
    pub fn export(&self, space: &ResidentSpace, out: impl Write) -> Result<ExportSummary> {
        Ok(space.export(out, self.now_ms())?)
    }

    /// Exports a resident to `set-aside/NAME-MS-N.tar` in the home, before
    /// something else takes their name on this node (a node of a cluster
    /// taking over another node's resident of the same name); the operator
    /// restores it under another name. Returns the archive's path.
    pub fn set_aside(&self, name: &ResidentName) -> Result<std::path::PathBuf> {
        let dir = self.dir().join("set-aside");
        std::fs::create_dir_all(&dir).map_err(|source| crate::HomeError::Io { path: dir.clone(), source })?;
        let (path, file) = (1..)
            .map(|n| dir.join(format!("{name}-{}-{n}.tar", self.now_ms())))
            .find_map(|path| match std::fs::File::create_new(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
                created => Some(
                    created.map(|file| (path.clone(), file)).map_err(|source| crate::HomeError::Io { path, source }),
                ),
            })
            .expect("some number is free")?;
        let mut out = std::io::BufWriter::new(file);
        self.export(&self.store.resident(name)?, &mut out)?;
        let file = out.into_inner().map_err(|e| crate::HomeError::Io { path: path.clone(), source: e.into_error() })?;
        file.sync_all().map_err(|source| crate::HomeError::Io { path: path.clone(), source })?;
        Ok(path)
    }
}

impl Home {
    /// Installs and updates from the catalogue in `dir` from now on (its
    /// key must be trusted for catalogues). Returns it, verified.
    pub fn add_catalogue_source(&self, dir: &std::path::Path) -> Result<domicile_package::Catalogue> {
        let catalogue = domicile_package::Catalogue::open(dir, &self.trust()?)?;
        self.catalogue_sources()?.add(&catalogue)?;
        Ok(catalogue)
    }
}
