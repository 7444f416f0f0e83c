//! Installed apps: the verified manifest, who signed it, what the resident
//! granted, and the package itself (kept so the space can be exported and
//! the app recompiled from verified bytes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use domicile_manifest::{AppId, Grants, Manifest};
use serde::{Deserialize, Serialize};

use crate::docs::abort;
use crate::journal::{Durability, Kv};
use crate::{decode, encode, ResidentName, ResidentSpace, Result, StoreError};

/// Decoded app records with the bytes they were decoded from, so that a
/// record is decoded again only when it changed. The host reads an app's
/// grants at every call (a revocation must bite at the next one); this
/// keeps that read to a lookup and a byte comparison.
#[derive(Default)]
pub(crate) struct AppCache(Mutex<HashMap<ResidentName, HashMap<AppId, DecodedRecord>>>);

/// A record's bytes, and the app decoded from them.
type DecodedRecord = (sled::IVec, Arc<InstalledApp>);

/// Entries kept at most; past it the cache starts again empty.
const APP_CACHE_ENTRIES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledApp {
    pub manifest: Manifest,
    /// Hex ed25519 key the package was verified with.
    pub publisher: String,
    /// Hex sha256 of the component: names its compiled artifact.
    pub component_digest: String,
    pub grants: Grants,
    pub installed_at_ms: u64,
    /// Set when the app must not run until the resident decides (its
    /// publisher key was revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Hold>,
    /// The keys of the triggers the resident switched off.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub triggers_off: std::collections::BTreeSet<String>,
}

/// Why an app is held, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub reason: String,
    pub since_ms: u64,
}

impl InstalledApp {
    pub fn id(&self) -> &AppId {
        &self.manifest.id
    }
}

/// The signed package file an app was installed from.
pub type PackageBytes = Vec<u8>;

impl ResidentSpace {
    /// Records an installed app and its package (replacing any previous
    /// record of the same id), durably.
    pub fn put_app(&self, app: &InstalledApp, package: &[u8]) -> Result<()> {
        let id = app.id().as_str().as_bytes();
        self.write(Durability::Now, |t| {
            t.apps.insert(id, &encode(app))?;
            t.packages.insert(id, package)
        })
    }

    pub fn app(&self, id: &AppId) -> Result<InstalledApp> {
        let bytes = self.apps.get(id.as_str())?.ok_or_else(|| StoreError::UnknownApp(id.to_string()))?;
        decode("an installed app", &bytes)
    }

    /// [`app`](Self::app), shared and decoded only when its record changed:
    /// always what the store holds now.
    pub fn app_now(&self, id: &AppId) -> Result<Arc<InstalledApp>> {
        let bytes = self.apps.get(id.as_str())?.ok_or_else(|| StoreError::UnknownApp(id.to_string()))?;
        let mut cache = self.app_cache.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Looked up by reference: the hot path allocates nothing.
        if let Some((cached, app)) = cache.get(&self.name).and_then(|apps| apps.get(id)) {
            if *cached == bytes {
                return Ok(app.clone());
            }
        }
        let app: Arc<InstalledApp> = Arc::new(decode("an installed app", &bytes)?);
        if cache.values().map(HashMap::len).sum::<usize>() >= APP_CACHE_ENTRIES {
            cache.clear();
        }
        cache.entry(self.name.clone()).or_default().insert(id.clone(), (bytes, app.clone()));
        Ok(app)
    }

    pub fn apps(&self) -> Result<Vec<InstalledApp>> {
        self.apps.iter().values().map(|v| decode("an installed app", &v?)).collect()
    }

    pub fn package(&self, id: &AppId) -> Result<PackageBytes> {
        Ok(self.packages.get(id.as_str())?.ok_or_else(|| StoreError::UnknownApp(id.to_string()))?.to_vec())
    }

    /// Replaces an app's grants, durably. Running apps see the change at
    /// their next host call: the host reads grants on every call.
    pub fn set_grants(&self, id: &AppId, grants: &Grants) -> Result<()> {
        self.change_app(id, |app| app.grants = grants.clone())
    }

    /// Changes an installed app's record, durably.
    fn change_app(&self, id: &AppId, change: impl FnOnce(&mut InstalledApp)) -> Result<()> {
        self.write(Durability::Now, |t| {
            let bytes =
                t.apps.get(id.as_str().as_bytes())?.ok_or_else(|| abort(StoreError::UnknownApp(id.to_string())))?;
            let mut app: InstalledApp = decode("an installed app", &bytes).map_err(abort)?;
            change(&mut app);
            t.apps.insert(id.as_str().as_bytes(), &encode(&app))
        })
    }

    /// The grants of an installed app, read fresh from the store.
    pub fn grants(&self, id: &AppId) -> Result<Grants> {
        Ok(self.app_now(id)?.grants.clone())
    }

    /// Holds every app signed by `publisher` (hex key); returns their ids.
    pub fn hold_apps_of(&self, publisher: &str, hold: &Hold) -> Result<Vec<AppId>> {
        let apps = self.apps()?;
        self.write(Durability::Now, |t| {
            let mut held = Vec::new();
            for mut app in apps {
                if app.publisher == publisher && app.held.is_none() {
                    app.held = Some(hold.clone());
                    t.apps.insert(app.id().as_str().as_bytes(), &encode(&app))?;
                    held.push(app.manifest.id);
                }
            }
            Ok(held)
        })
    }

    /// The resident decided to keep using a held app.
    pub fn release_app(&self, id: &AppId) -> Result<()> {
        self.change_app(id, |app| app.held = None)
    }

    /// Switches one of an app's triggers (by its key) on or off.
    pub fn set_trigger_enabled(&self, id: &AppId, trigger: &str, enabled: bool) -> Result<()> {
        self.change_app(id, |app| {
            if enabled {
                app.triggers_off.remove(trigger);
            } else {
                app.triggers_off.insert(trigger.to_owned());
            }
        })
    }

    pub fn remove_app(&self, id: &AppId) -> Result<()> {
        let triggers = self.trigger_keys(id)?;
        self.write(Durability::Now, |t| {
            if t.apps.get(id.as_str().as_bytes())?.is_none() {
                return Err(abort(StoreError::UnknownApp(id.to_string())));
            }
            t.apps.remove(id.as_str().as_bytes())?;
            t.packages.remove(id.as_str().as_bytes())?;
            // The state of its triggers goes with it.
            triggers.iter().try_for_each(|key| t.meta.remove(key))
        })
    }
}
