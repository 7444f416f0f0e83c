//! An app's lifecycle: install (verify the package, then parse its
//! manifest, then compile and check its component, then record it with the
//! resident's grants), update (only newer versions of the same app from
//! the same publisher; what it newly asks is reported for re-consent),
//! uninstall.

use domicile_manifest::{AppId, Grants, Manifest};
use domicile_package::{PublicKey, TrustStore, VerifiedPackage};
use domicile_store::{InstalledApp, ResidentSpace, StoreError};
use wasmtime::component::{types::ComponentItem, Component};

use crate::{HostError, Runtime};

/// A package that verified, whose manifest parsed and whose component
/// compiled and passed the checks: all that is left is the resident's grants.
pub struct PreparedInstall {
    package: Vec<u8>,
    verified: VerifiedPackage,
    manifest: Manifest,
}

impl PreparedInstall {
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    pub fn publisher(&self) -> &PublicKey {
        self.verified.publisher()
    }
}

/// A verified, compiled newer version of an installed app.
pub struct PreparedUpdate {
    install: PreparedInstall,
    current: InstalledApp,
    new_asks: Vec<String>,
}

impl PreparedUpdate {
    pub fn current(&self) -> &InstalledApp {
        &self.current
    }
    pub fn manifest(&self) -> &Manifest {
        &self.install.manifest
    }
    /// What the new version asks that the installed one did not, in words.
    /// When it is not empty, the update should wait for the resident's grant.
    pub fn new_asks(&self) -> &[String] {
        &self.new_asks
    }
}

impl Runtime {
    /// Verifies a package, then parses its manifest, then compiles and
    /// checks its component. Nothing is parsed before the signature
    /// verifies, and nobody is asked for grants for an app that could not
    /// be installed. The signing key must be trusted as a publisher, or be
    /// the one a trusted catalogue lists for the app (`vouched`).
    pub fn prepare_install(
        &self,
        space: &ResidentSpace,
        trust: &TrustStore,
        package: Vec<u8>,
        vouched: Option<&PublicKey>,
    ) -> Result<PreparedInstall, HostError> {
        let sealed = domicile_package::unseal(&package)?;
        let verified = match vouched {
            Some(key) => sealed.verify_vouched(trust, key, "the catalogue lists for this app")?,
            None => sealed.verify(trust)?,
        };
        let manifest = Manifest::from_bytes(verified.manifest_bytes())?;
        space.vocabulary().check_permissions(&manifest.permissions)?;
        ensure_not_installed(space, &manifest)?;
        self.compile_checked(&verified, &manifest)?;
        Ok(PreparedInstall { package, verified, manifest })
    }

    /// Compiles the verified component, or loads what an earlier install
    /// compiled from the same bytes (in this home, or another home sharing
    /// its artifact cache), then checks its imports and exports.
    pub(crate) fn compile_checked(&self, verified: &VerifiedPackage, manifest: &Manifest) -> Result<(), HostError> {
        let digest = verified.component_digest_hex();
        let component = match self.cache.load(&self.engine, &digest) {
            Some(component) => component,
            None => self.cache.compile(&self.engine, &digest, verified.component_bytes())?,
        };
        self.check_component(&component, manifest)
    }

    /// Prepares an update of an installed app: the package must be signed by
    /// the key the app was installed with (whoever else vouches for it),
    /// be a newer version of the same app and world, and compile. The
    /// result says what the new version asks that the old one did not.
    pub fn prepare_update(
        &self,
        space: &ResidentSpace,
        trust: &TrustStore,
        app: &AppId,
        package: Vec<u8>,
    ) -> Result<PreparedUpdate, HostError> {
        let current = space.app(app)?;
        let installed_key: PublicKey = current
            .publisher
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("the publisher key recorded for {app}")))?;
        let sealed = domicile_package::unseal(&package)?;
        if sealed.claimed_publisher() != &installed_key {
            return Err(HostError::PublisherChanged {
                app: app.clone(),
                installed: current.publisher.clone(),
                offered: sealed.claimed_publisher().to_string(),
            });
        }
        let verified = sealed.verify_vouched(trust, &installed_key, "this app was installed with")?;
        let manifest = Manifest::from_bytes(verified.manifest_bytes())?;
        if &manifest.id != app {
            return Err(HostError::OtherApp { app: app.clone(), offered: manifest.id });
        }
        if manifest.version <= current.manifest.version {
            return Err(HostError::NotNewer {
                app: app.clone(),
                installed: current.manifest.version.clone(),
                offered: manifest.version,
            });
        }
        if manifest.world != current.manifest.world {
            return Err(HostError::WorldChanged { app: app.clone(), from: current.manifest.world, to: manifest.world });
        }
        space.vocabulary().check_permissions(&manifest.permissions)?;
        self.compile_checked(&verified, &manifest)?;
        let new_asks = manifest.new_asks_over(&current.manifest);
        Ok(PreparedUpdate { install: PreparedInstall { package, verified, manifest }, current, new_asks })
    }

    /// Replaces the installed version by the prepared one. The grants carried
    /// over are cut down to what the new version still asks; `added` are
    /// the resident's new grants (for what it newly asks).
    #[tracing::instrument(skip_all, fields(app = %update.current.manifest.id))]
    pub fn apply_update(
        &self,
        space: &ResidentSpace,
        update: PreparedUpdate,
        added: &Grants,
    ) -> Result<InstalledApp, HostError> {
        let PreparedUpdate { install: PreparedInstall { package, verified, manifest }, current, .. } = update;
        // Someone may have updated or removed it since it was prepared.
        if space.app(&current.manifest.id)? != current {
            return Err(HostError::Engine(format!(
                "{} changed while the update was prepared; try again",
                current.manifest.id
            )));
        }
        let mut grants = current.grants.within(&current.manifest, &manifest);
        grants.extend(added);
        // A trigger switched off stays off while the new version keeps it;
        // one the new version adds is off until the resident switches it on.
        let triggers_off = manifest
            .triggers
            .iter()
            .map(|t| t.key())
            .filter(|k| current.triggers_off.contains(k) || !current.manifest.triggers.iter().any(|t| &t.key() == k))
            .collect();
        let app = InstalledApp {
            manifest,
            publisher: current.publisher,
            component_digest: verified.component_digest_hex(),
            grants,
            installed_at_ms: current.installed_at_ms,
            held: None,
            triggers_off,
        };
        space.put_app(&app, &package)?;
        tracing::info!(version = %app.manifest.version, "updated");
        Ok(app)
    }

    /// Records the prepared app with the resident's grants.
    #[tracing::instrument(skip_all, fields(app = %prepared.manifest.id))]
    pub fn install(
        &self,
        space: &ResidentSpace,
        prepared: PreparedInstall,
        grants: Grants,
    ) -> Result<InstalledApp, HostError> {
        let PreparedInstall { package, verified, manifest } = prepared;
        ensure_not_installed(space, &manifest)?;
        let app = InstalledApp {
            manifest,
            publisher: verified.publisher().to_string(),
            component_digest: verified.component_digest_hex(),
            grants,
            installed_at_ms: self.config.clock.now_ms(),
            held: None,
            triggers_off: Default::default(),
        };
        space.put_app(&app, &package)?;
        tracing::info!("installed");
        Ok(app)
    }

    /// The component must import only what we offer, and export its world.
    fn check_component(&self, component: &Component, manifest: &Manifest) -> Result<(), HostError> {
        let ty = component.component_type();
        let forbidden: Vec<String> = ty
            .imports(&self.engine)
            .map(|(name, _)| name)
            .filter(|name| !import_allowed(name, self.config.dev_sources.is_some()))
            .map(str::to_owned)
            .collect();
        if !forbidden.is_empty() {
            return Err(HostError::ForbiddenImports { imports: forbidden });
        }
        let export = manifest.world.export();
        let exported = ty
            .exports(&self.engine)
            .any(|(name, item)| name == export && matches!(item.ty, ComponentItem::ComponentFunc(_)));
        if !exported {
            return Err(HostError::WrongExports {
                world: manifest.world,
                detail: format!("no exported function `{export}`"),
            });
        }
        // Type-checks every import against the linker now rather than at the first run.
        self.linker
            .instantiate_pre(component)
            .map_err(|e| HostError::WrongExports { world: manifest.world, detail: format!("{e:#}") })?;
        Ok(())
    }

    pub fn uninstall(&self, space: &ResidentSpace, app: &AppId) -> Result<(), HostError> {
        space.remove_app(app)?;
        Ok(())
    }
}

fn ensure_not_installed(space: &ResidentSpace, manifest: &Manifest) -> Result<(), HostError> {
    match space.app(&manifest.id) {
        Ok(existing) => Err(HostError::AlreadyInstalled {
            app: existing.manifest.id,
            version: existing.manifest.version.to_string(),
        }),
        Err(StoreError::UnknownApp(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The imports a component may have: our interfaces, and the standard
/// WASI 0.2 interfaces that language toolchains import whether the code
/// uses them or not. These are linked but give nothing (see `sandbox`).
/// Any other interface, or WASI of another major release, is refused by
/// name rather than left to the linker's error. `dev-source` is ours too,
/// but only a runtime of `domicile dev` (`dev`) offers it.
fn import_allowed(name: &str, dev: bool) -> bool {
    const WASI_PACKAGES: [&str; 7] = ["io", "clocks", "random", "cli", "filesystem", "sockets", "http"];
    if crate::dev_source::is_dev_source(name) {
        return dev;
    }
    if name.starts_with("domicile:app/") {
        return true;
    }
    let Some(rest) = name.strip_prefix("wasi:") else { return false };
    let Some((package, version)) = rest.split_once('/').and_then(|(p, i)| Some((p, i.split_once('@')?.1))) else {
        return false;
    };
    WASI_PACKAGES.contains(&package) && version.starts_with("0.2.")
}
