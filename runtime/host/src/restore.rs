//! What a restore may bring back of an archive's apps: each package is
//! checked as installing it would be, against this home's trust store and
//! catalogues, never against anything the archive says.

use domicile_manifest::{AppId, Manifest};
use domicile_package::{Catalogue, PublicKey, Role, TrustStore};
use domicile_store::{AppRefusal, Hold, PackageVetting, VettedApp};

use crate::Runtime;

/// Vets the packages of an archive for [`domicile_store::Store::restore`].
pub struct ArchiveVetting<'a> {
    pub runtime: &'a Runtime,
    pub trust: &'a TrustStore,
    /// The home's catalogues, verified: one that lists an app under its
    /// publisher vouches for that publisher, as at install.
    pub catalogues: &'a [Catalogue],
    pub now_ms: u64,
}

impl ArchiveVetting<'_> {
    fn vouched(&self, app: &AppId, key: &PublicKey) -> bool {
        self.catalogues.iter().any(|c| c.app(app).is_some_and(|listed| &listed.publisher == key))
    }
}

impl PackageVetting for ArchiveVetting<'_> {
    fn vet(&self, record: &AppId, package: &[u8]) -> Result<VettedApp, AppRefusal> {
        let altered = |e: &dyn std::fmt::Display| AppRefusal::Altered(e.to_string());
        let sealed = domicile_package::unseal(package).map_err(|e| altered(&e))?;
        let key = *sealed.claimed_publisher();
        // The signature first, whoever signed: a package that does not
        // verify under its own key was altered, and nothing of it is read.
        let verified = sealed.verify_with(&key).map_err(|e| altered(&e))?;
        let hold = if self.trust.is_revoked(&key) {
            Some(Hold { reason: format!("its publisher key {key} is revoked in this home"), since_ms: self.now_ms })
        } else if self.trust.trusted_as(&key, Role::Publisher).is_some() || self.vouched(record, &key) {
            None
        } else {
            return Err(AppRefusal::LeftOut(format!(
                "it is signed by {key}, which this home does not trust: trust the publisher (`trust add {key}`) or add a catalogue that lists it, then install the app again"
            )));
        };
        let manifest = Manifest::from_bytes(verified.manifest_bytes())
            .map_err(|e| AppRefusal::LeftOut(format!("its signed manifest is not valid here: {e}")))?;
        if &manifest.id != record {
            return Err(AppRefusal::Altered(format!("it is the package of {}", manifest.id)));
        }
        self.runtime
            .compile_checked(&verified, &manifest)
            .map_err(|e| AppRefusal::LeftOut(format!("it does not pass this runtime's checks: {e}")))?;
        Ok(VettedApp { manifest, publisher: key.to_string(), component_digest: verified.component_digest_hex(), hold })
    }
}
