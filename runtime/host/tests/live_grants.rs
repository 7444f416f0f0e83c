//! Grants change under a running app: the host reads them at every call, so
//! narrowing the fields or revoking the read reaches an invocation that is
//! already running, at its next host call. Store, runtime and a real signed
//! component in one process (the CLI cannot do this: the store is locked by
//! the process running the app).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domicile_host::{Clock, Runtime, RuntimeConfig};
use domicile_manifest::{Grants, Manifest};
use domicile_package::{PublicKey, TrustStore};
use domicile_store::{AuditFilter, Author, Change, Operation, ResidentSpace, Store, Vocabulary};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn query_calls(space: &ResidentSpace) -> usize {
    space.audit(&AuditFilter::default()).unwrap().iter().filter(|e| e.operation == Operation::Query).count()
}

/// Waits (bounded, as a liveness guard) until the app made `n` more queries.
fn wait_for_queries(space: &ResidentSpace, after: usize, n: usize) -> usize {
    let started = Instant::now();
    loop {
        let now = query_calls(space);
        if now >= after + n {
            return now;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the app made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowing_and_revoking_reach_an_app_that_is_running() {
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
    config.clock = Clock::System;
    config.limits.cpu_ms.max = 60_000;
    let runtime = Arc::new(Runtime::new(config).unwrap());
    let package = std::fs::read(repo().join("tests/fixtures/packages/poller.dpkg")).unwrap();
    let prepared = runtime.prepare_install(&space, &trust, package, None).unwrap();
    let manifest: Manifest = prepared.manifest().clone();
    let app = runtime.install(&space, prepared, Grants::all(&manifest)).unwrap();
    let id = app.manifest.id.clone();

    let running = {
        let (runtime, space, id) = (runtime.clone(), space.clone(), id.clone());
        tokio::spawn(async move { runtime.run_service(&space, &id, r#"{"max_ms": 50000}"#).await })
    };
    let seen = wait_for_queries(&space, 0, 3);
    space.set_grants(&id, &Grants::from_specs(&manifest, &["io.domicile.mobility.trip:read:mode"]).unwrap()).unwrap();
    wait_for_queries(&space, seen, 3);
    space.set_grants(&id, &Grants::default()).unwrap();

    let output = running.await.unwrap().expect("the app ends normally after the refusal");
    let report: serde_json::Value = serde_json::from_str(&output).unwrap();
    let sets = report["field_sets"].as_array().unwrap();
    assert!(sets.len() >= 2, "{report}");
    assert!(sets[0].as_array().unwrap().len() > 1, "every field at first: {report}");
    assert_eq!(sets.last().unwrap(), &serde_json::json!(["mode"]), "then only the granted one: {report}");
    let stopped = report["stopped_by"].as_str().unwrap();
    assert!(stopped.starts_with("denied") && stopped.contains("not granted"), "{report}");
    assert!(report["calls"].as_u64().unwrap() >= 6, "{report}");
    let denials = space
        .audit(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.outcome == domicile_store::Outcome::Denied)
        .count();
    assert_eq!(denials, 1, "the refusal is audited once");
}
