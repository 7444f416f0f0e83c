//! A scratch home for the host's tests: a store with one resident who has
//! one trip, the sample key trusted, and a runtime; fixtures install from
//! `tests/fixtures/packages`.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use domicile_host::{Runtime, RuntimeConfig};
use domicile_manifest::{AppId, Grants, Manifest};
use domicile_package::{PublicKey, TrustStore};
use domicile_store::{Author, Change, ResidentSpace, Store, Vocabulary};

pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub space: ResidentSpace,
    pub trust: TrustStore,
    pub runtime: Arc<Runtime>,
}

/// A scratch home whose runtime is configured by `configure`.
pub fn scratch(configure: impl FnOnce(&mut RuntimeConfig)) -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store"), Arc::new(Vocabulary::builtin())).unwrap();
    let space = store.create_resident(&"me".parse().unwrap()).unwrap();
    let trip = serde_json::json!({
        "start": "2026-03-02T08:00:00Z", "end": "2026-03-02T08:20:00Z", "date": "2026-03-02", "month": "2026-03",
        "mode": "bike", "distance_m": 4200, "duration_s": 1200
    });
    let change =
        Change::Put { doctype: "io.domicile.mobility.trip".parse().unwrap(), id: "t1".parse().unwrap(), body: trip };
    space.commit(&[change], &Author::Resident, 0, &[]).unwrap();
    let mut trust = TrustStore::open(dir.path().join("trust.json")).unwrap();
    let key = std::fs::read_to_string(repo().join("sample-apps/keys/sample-publisher.pub")).unwrap();
    trust.add(key.trim().parse::<PublicKey>().unwrap(), "samples", &[]).unwrap();
    let mut config = RuntimeConfig::new(dir.path().join("cache"), dir.path().join("scratch"));
    configure(&mut config);
    let runtime = Arc::new(Runtime::new(config).unwrap());
    Scratch { dir, space, trust, runtime }
}

impl Scratch {
    /// Installs a test fixture with everything it asks granted.
    pub fn install(&self, fixture: &str) -> (AppId, Manifest) {
        let package = std::fs::read(repo().join(format!("tests/fixtures/packages/{fixture}.dpkg"))).unwrap();
        let prepared = self.runtime.prepare_install(&self.space, &self.trust, package, None).unwrap();
        let manifest = prepared.manifest().clone();
        let app = self.runtime.install(&self.space, prepared, Grants::all(&manifest)).unwrap();
        (app.manifest.id, manifest)
    }
}
