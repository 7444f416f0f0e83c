//! A resident's operations on apps: install (from a package file or a
//! catalogue, with the grants the resident chose), update (re-consent when
//! the new version asks for more), grant and revoke, uninstall (optionally
//! with the documents the app created), keep an app held after its key was
//! revoked; and running apps: a service, an importer on an export file.

use std::collections::BTreeMap;

use domicile_host::{ImportMode, Imported, PreparedInstall};
use domicile_manifest::{AppId, Grants, Manifest};
use domicile_package::{update_offer, PublicKey, UpdateOffer};
use domicile_store::{InstalledApp, ResidentSpace};
use serde::Serialize;

use crate::{Home, HomeError, Result};

/// Where an app to install comes from.
pub enum PackageSource {
    /// A package file's bytes, and what to call it in messages.
    File { bytes: Vec<u8>, label: String },
    /// The newest version (or the one named) in the home's catalogues.
    Catalogue { app: AppId, version: Option<semver::Version> },
}

/// An app verified and compiled, waiting for the resident's grants: what
/// the consent screen shows.
pub struct Installing {
    prepared: PreparedInstall,
    /// Where it came from: a file, or which catalogue.
    pub origin: String,
}

impl Installing {
    pub fn manifest(&self) -> &Manifest {
        self.prepared.manifest()
    }

    pub fn publisher(&self) -> &PublicKey {
        self.prepared.publisher()
    }
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum UpdateOutcome {
    UpToDate {
        app: AppId,
        version: semver::Version,
    },
    /// The new version asks for more than the installed one and the
    /// resident has not said what to grant: the installed version keeps
    /// working meanwhile.
    WaitingForGrant {
        app: AppId,
        installed: semver::Version,
        available: semver::Version,
        asks: Vec<String>,
    },
    Updated {
        app: AppId,
        from: semver::Version,
        to: semver::Version,
        grants: Grants,
    },
}

impl Home {
    /// Verifies the package (against the trust store, or the catalogue's
    /// vouching for its publisher) and compiles it; nothing is installed yet.
    pub fn prepare_install(&self, space: &ResidentSpace, source: PackageSource) -> Result<Installing> {
        let trust = self.trust()?;
        let runtime = self.runtime()?;
        match source {
            PackageSource::File { bytes, label } => {
                let prepared = runtime.prepare_install(space, &trust, bytes, None)?;
                Ok(Installing { prepared, origin: label })
            }
            PackageSource::Catalogue { app, version } => {
                let catalogue = self.catalogue_sources()?.find(&trust, &app)?;
                let fetched = catalogue.fetch(&app, version.as_ref(), &trust)?;
                let prepared = runtime.prepare_install(space, &trust, fetched.bytes, Some(&fetched.app.publisher))?;
                Ok(Installing { prepared, origin: format!("the catalogue {}", catalogue.index().name) })
            }
        }
    }

    /// Installs with exactly `grants` (checked against the manifest).
    pub fn install(&self, space: &ResidentSpace, installing: Installing, grants: Grants) -> Result<InstalledApp> {
        let app = self.runtime()?.install(space, installing.prepared, grants)?;
        self.set_up_triggers(space, &app)?;
        Ok(app)
    }

    /// Updates `app` to the newest version of its catalogue from the same
    /// publisher, or to `package`. `grants` says what to grant of what the
    /// new version newly asks; `None` and new asks: the update waits.
    pub fn update(
        &self,
        space: &ResidentSpace,
        app: &AppId,
        package: Option<Vec<u8>>,
        grants: Option<&[String]>,
    ) -> Result<UpdateOutcome> {
        let current = space.app(app)?;
        let trust = self.trust()?;
        let bytes = match package {
            Some(bytes) => bytes,
            None => {
                let catalogues = self.catalogue_sources()?.verified(&trust);
                match update_offer(&catalogues, app, &current.publisher, &current.manifest.version) {
                    UpdateOffer::Newer { version, catalogue } => catalogue.fetch(app, Some(&version), &trust)?.bytes,
                    UpdateOffer::UpToDate => {
                        return Ok(UpdateOutcome::UpToDate { app: app.clone(), version: current.manifest.version })
                    }
                    UpdateOffer::OtherPublisher { catalogue, key, version } => {
                        return Err(HomeError::OtherPublisher(Box::new(crate::OtherPublisher {
                            app: app.to_string(),
                            catalogue,
                            version,
                            offered: key.to_string(),
                            installed: current.publisher,
                        })))
                    }
                }
            }
        };
        let runtime = self.runtime()?;
        let prepared = runtime.prepare_update(space, &trust, app, bytes)?;
        let (from, to) = (current.manifest.version.clone(), prepared.manifest().version.clone());
        let added = match grants {
            Some(specs) => Grants::from_specs(prepared.manifest(), specs)?,
            None if !prepared.new_asks().is_empty() => {
                let asks = prepared.new_asks().to_vec();
                return Ok(UpdateOutcome::WaitingForGrant { app: app.clone(), installed: from, available: to, asks });
            }
            None => Grants::default(),
        };
        let updated = runtime.apply_update(space, prepared, &added)?;
        self.set_up_triggers(space, &updated)?;
        Ok(UpdateOutcome::Updated { app: app.clone(), from, to, grants: updated.grants })
    }

    /// Grants more of what the app's manifest asks (`add`), or takes grants
    /// back (all of them when `specs` is empty). Returns the grants now.
    pub fn change_grants(&self, space: &ResidentSpace, app: &AppId, specs: &[String], add: bool) -> Result<Grants> {
        let installed = space.app(app)?;
        let mut grants = installed.grants.clone();
        if add {
            grants.extend(&Grants::from_specs(&installed.manifest, specs)?);
        } else {
            grants.revoke(&installed.manifest, specs)?;
        }
        space.set_grants(app, &grants)?;
        Ok(grants)
    }

    /// Removes an app; with `purge_data`, also every document it created.
    /// Returns how many documents were deleted.
    pub fn uninstall(&self, space: &ResidentSpace, app: &AppId, purge_data: bool) -> Result<u64> {
        self.runtime()?.uninstall(space, app)?;
        Ok(if purge_data { space.purge_created_by(app, self.now_ms())? } else { 0 })
    }

    /// Keeps an app that was held because its publisher key was revoked.
    pub fn keep_held_app(&self, space: &ResidentSpace, app: &AppId) -> Result<()> {
        Ok(space.release_app(app)?)
    }

    /// The newest version each app's catalogue offers, when it is newer than
    /// the installed one and from the same publisher. None when the trust
    /// store or the catalogues cannot be read.
    pub fn available_updates(&self, apps: &[InstalledApp]) -> BTreeMap<AppId, semver::Version> {
        let (Ok(trust), Ok(sources)) = (self.trust(), self.catalogue_sources()) else { return BTreeMap::new() };
        let catalogues = sources.verified(&trust);
        apps.iter()
            .filter_map(|app| match update_offer(&catalogues, app.id(), &app.publisher, &app.manifest.version) {
                UpdateOffer::Newer { version, .. } => Some((app.id().clone(), version)),
                _ => None,
            })
            .collect()
    }

    /// Runs a service app; returns its JSON output.
    pub async fn run(&self, space: &ResidentSpace, app: &AppId, input: &str) -> Result<String> {
        Ok(self.runtime()?.run_service(space, app, input).await?)
    }

    /// Imports a data holder's export file with an importer app.
    pub async fn import(
        &self,
        space: &ResidentSpace,
        importer: &AppId,
        file_name: &str,
        bytes: &[u8],
        mode: ImportMode,
        progress: std::sync::Arc<domicile_host::ImportProgress>,
    ) -> Result<Imported> {
        Ok(self.runtime()?.run_import(space, importer, file_name, bytes, mode, progress).await?)
    }
}
