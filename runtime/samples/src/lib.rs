//! The sample apps and data built into domicile, and the homes domicile
//! makes for itself from them: the demo (`domicile demo`), the fixtures of
//! a development home (`domicile dev`), the benchmarks' scratch homes.
//!
//! The signed sample catalogue (`sample-apps/catalogue`: index, signature,
//! packages), its publisher's key and the data holders' sample exports
//! (`sample-apps/data`) are compiled in, so all of this runs from anywhere.
//! Nothing here touches a resident's own home: what it installs is granted
//! everything its manifest asks, which only a home made for the purpose may do.

pub mod demo;

use std::path::Path;

use anyhow::{Context, Result};
use domicile_home::{Home, PackageSource};
use domicile_host::Clock;
use domicile_manifest::Grants;
use domicile_package::{Catalogue, PublicKey, Role};
use domicile_store::{ResidentName, ResidentSpace};

const SAMPLE_PUBLISHER: &str = include_str!("../../../sample-apps/keys/sample-publisher.pub");
include!(concat!(env!("OUT_DIR"), "/sample_catalogue.rs"));

/// The sample data, as data holders export it: (file name, bytes).
pub const GPX: (&str, &[u8]) =
    ("week-around-nantes.gpx", include_bytes!("../../../sample-apps/data/week-around-nantes.gpx"));
pub const LOAD_CURVE: (&str, &[u8]) =
    ("enedis-load-curve-2026-03.csv", include_bytes!("../../../sample-apps/data/enedis-load-curve-2026-03.csv"));
pub const DAILY_INDEX: (&str, &[u8]) =
    ("enedis-daily-index-2025-2026.csv", include_bytes!("../../../sample-apps/data/enedis-daily-index-2025-2026.csv"));
pub const BANK_OFX: (&str, &[u8]) = ("bank-2026-02.ofx", include_bytes!("../../../sample-apps/data/bank-2026-02.ofx"));
pub const BANK_CSV: (&str, &[u8]) = ("bank-2026-03.csv", include_bytes!("../../../sample-apps/data/bank-2026-03.csv"));
pub const XAPI: (&str, &[u8]) = ("xapi-lea-2026.json", include_bytes!("../../../sample-apps/data/xapi-lea-2026.json"));
pub const FHIR: (&str, &[u8]) =
    ("fhir-health-2026.json", include_bytes!("../../../sample-apps/data/fhir-health-2026.json"));

/// The sample exports of data holders, as `domicile dev` loads them.
pub const SAMPLE_DATA: [(&str, &[u8]); 7] = [GPX, LOAD_CURVE, DAILY_INDEX, BANK_OFX, BANK_CSV, XAPI, FHIR];
/// The sample publisher's key (it signs the sample catalogue and apps).
pub fn sample_key() -> Result<PublicKey> {
    Ok(SAMPLE_PUBLISHER.trim().parse()?)
}

/// The package of a sample app from the embedded catalogue (its one version).
pub fn sample_package(name: &str) -> Result<Vec<u8>> {
    SAMPLE_CATALOGUE
        .iter()
        .find(|(path, _)| {
            path.strip_prefix("packages/")
                .and_then(|p| p.strip_prefix(name))
                .is_some_and(|rest| rest.starts_with('-') && rest.ends_with(".dpkg"))
        })
        .map(|(_, bytes)| bytes.to_vec())
        .with_context(|| format!("no sample package {name}"))
}

/// A new home in `dir` with its first resident, trusting the sample key for
/// catalogues and installing from the sample catalogue (copied into
/// `dir/catalogue`).
pub fn create_with_sample_catalogue(dir: &Path, first: &ResidentName, clock: Clock) -> Result<(Home, Catalogue)> {
    let home = Home::create(dir, first, clock)?;
    home.trust_key(sample_key()?, "domicile samples", &[Role::Catalogue])?;
    let catalogue_dir = dir.join("catalogue");
    for (path, bytes) in SAMPLE_CATALOGUE {
        let path = catalogue_dir.join(path);
        std::fs::create_dir_all(path.parent().expect("catalogue files are in a folder"))?;
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let catalogue = home.add_catalogue_source(&catalogue_dir)?;
    Ok((home, catalogue))
}

/// Installs a package in `space`, verified against the home's trust store,
/// with everything its manifest asks granted: for the homes domicile makes
/// itself (benchmarks, load tests, development homes), never a resident's.
pub fn install_granting_all(home: &Home, space: &ResidentSpace, package: Vec<u8>) -> Result<()> {
    let installing = home.prepare_install(space, PackageSource::File { bytes: package, label: "a sample".into() })?;
    let grants = Grants::all(installing.manifest());
    home.install(space, installing, grants)?;
    Ok(())
}

/// How many documents of `doctype` the space holds.
pub fn count(space: &ResidentSpace, doctype: &str) -> Result<u64> {
    Ok(space.doctype_counts()?.into_iter().find(|(d, _)| d == doctype).map_or(0, |(_, n)| n))
}
