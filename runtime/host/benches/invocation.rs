//! Criterion micro-benchmarks of the host: one invocation of an empty
//! service (new Store, instantiate from the pool, call, tear down), and one
//! that reads 1,000 trips through the batched cursor. `domicile bench`
//! compares the same paths against raw wasmtime and native Rust.

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use domicile_store::{Author, Change};

fn invocations(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let home = common::scratch(|_| {});
    let (bench, _) = home.install("bench");
    let doctype: domicile_manifest::Doctype = "io.domicile.mobility.trip".parse().unwrap();
    let changes: Vec<Change> = (0..999)
        .map(|i| Change::Put {
            doctype: doctype.clone(),
            id: format!("b{i:04}").parse().unwrap(),
            body: serde_json::json!({
                "start": format!("2026-02-01T00:00:{:02}Z", i % 60), "end": "2026-02-01T01:00:00Z",
                "date": "2026-02-01", "month": "2026-02", "distance_m": i as f64, "duration_s": 60, "mode": "bike"
            }),
        })
        .collect();
    home.space.commit(&changes, &Author::Resident, 0, &[]).unwrap();

    let (runtime, space) = (home.runtime.clone(), home.space.clone());
    c.bench_function("empty invocation", |b| {
        b.to_async(&tokio).iter(|| async { runtime.run_service(&space, &bench, "{}").await.unwrap() })
    });
    c.bench_function("scan of 1000 trips", |b| {
        b.to_async(&tokio).iter(|| async { runtime.run_service(&space, &bench, r#"{"scan": true}"#).await.unwrap() })
    });
}

criterion_group!(benches, invocations);
criterion_main!(benches);
