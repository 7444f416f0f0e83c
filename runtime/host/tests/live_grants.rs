//! Grants change under a running app: the host reads them at every call, so
//! narrowing the fields or revoking the read reaches an invocation that is
//! already running, at its next host call. Store, runtime and a real signed
//! component in one process (the CLI cannot do this: the store is locked by
//! the process running the app).

mod common;

use std::time::{Duration, Instant};

use common::scratch;
use domicile_host::Clock;
use domicile_manifest::Grants;
use domicile_store::{AuditFilter, Operation, ResidentSpace};

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
    let home = scratch(|config| {
        config.clock = Clock::System;
        config.limits.cpu_ms.max = 60_000;
    });
    let (runtime, space) = (home.runtime.clone(), home.space.clone());
    let (id, manifest) = home.install("poller");

    let running = {
        let (runtime, space, id) = (runtime.clone(), space.clone(), id.clone());
        tokio::spawn(async move { runtime.run_service(&space, &id, r#"{"max_ms": 50000}"#).await })
    };
    wait_for_queries(&space, 0, 3);
    space.set_grants(&id, &Grants::from_specs(&manifest, &["io.domicile.mobility.trip:read:mode"]).unwrap()).unwrap();
    // Counted from now: queries made before the narrowing (the app goes on
    // meanwhile) must not stand for queries made after it.
    wait_for_queries(&space, query_calls(&space), 3);
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
