//! Hostile invocations running at the same time as well-behaved ones, on
//! a runtime with fewer instance slots than invocations: every hostile one
//! ends with its own error, every well-behaved one finishes, and the ones
//! that did not find a free slot waited for one instead of failing.

use std::path::Path;
use std::sync::Arc;

use domicile_host::{HostError, LimitKind, Runtime, RuntimeConfig};
use domicile_manifest::Grants;
use domicile_package::{PublicKey, TrustStore};
use domicile_store::{Author, Change, Store, Vocabulary};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_behaved_runs_finish_while_hostile_ones_are_stopped() {
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
    config.max_concurrent = 3;
    let runtime = Arc::new(Runtime::new(config).unwrap());
    for fixture in ["hostile", "snooper"] {
        let package = std::fs::read(repo().join(format!("tests/fixtures/packages/{fixture}.dpkg"))).unwrap();
        let prepared = runtime.prepare_install(&space, &trust, package, None).unwrap();
        let manifest = prepared.manifest().clone();
        runtime.install(&space, prepared, Grants::all(&manifest)).unwrap();
    }

    let mut tasks = Vec::new();
    let attacks = ["spin", "recursion", "host-call-flood", "spin", "document-flood", "panic", "spin"];
    for (i, attack) in attacks.iter().enumerate() {
        for (app, input) in [
            ("org.example.test.hostile", format!(r#"{{"attack": "{attack}"}}"#)),
            ("org.example.test.snooper", r#"{"doctype": "io.domicile.mobility.trip"}"#.to_owned()),
        ] {
            let (runtime, space) = (runtime.clone(), space.clone());
            tasks.push(tokio::spawn(async move {
                let result = runtime.run_service(&space, &app.parse().unwrap(), &input).await;
                (i, app, result)
            }));
        }
    }
    for task in tasks {
        let (i, app, result) = task.await.unwrap();
        if app == "org.example.test.snooper" {
            let output = result.unwrap_or_else(|e| panic!("a well-behaved run failed: {e}"));
            assert!(output.contains("bike"), "{output}");
            continue;
        }
        let err = result.expect_err("a hostile run must fail");
        let ok = matches!(
            (attacks[i], &err),
            ("spin", HostError::Limit { kind: LimitKind::WallTime | LimitKind::Cpu, .. })
                | ("host-call-flood", HostError::Limit { kind: LimitKind::HostCalls, .. })
                | ("document-flood", HostError::Limit { kind: LimitKind::Documents, .. })
                | ("recursion" | "panic", HostError::Trap { .. })
        );
        assert!(ok, "{}: unexpected {err}", attacks[i]);
    }
}
