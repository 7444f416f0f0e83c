//! Store benchmarks, each against its baseline measured in the same run:
//! - durable single-document write vs raw sled insert + flush;
//! - point read vs raw sled get;
//! - a range query returning 1% of 100k documents through an index vs the
//!   same query answered by a full scan.
//!
//! Run with `cargo bench -p domicile-store`. Prints medians and ratios.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domicile_store::{Author, Change, Query, ResidentSpace, Selector, Store, Vocabulary};
use serde_json::json;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn trip(i: u64) -> serde_json::Value {
    let day = 1 + i % 100;
    let date = format!("2026-{:02}-{:02}", 1 + (day - 1) / 28, 1 + (day - 1) % 28);
    json!({
        "start": format!("{date}T08:{:02}:{:02}Z", i / 60 % 60, i % 60),
        "end": format!("{date}T09:00:00Z"),
        "date": date,
        "month": &date[..7],
        "distance_m": i as f64,
        "duration_s": 60,
        "mode": "bike",
        // The same value as `date`, in a field without an index.
        "source": date,
    })
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), Arc::new(Vocabulary::builtin())).unwrap();
    let me: ResidentSpace = store.create_resident(&"me".parse().unwrap()).unwrap();
    // Raw sled as the store opens a space: the same segment size.
    let raw = domicile_store::space_config(&dir.path().join("raw")).open().unwrap();
    let doctype: domicile_manifest::Doctype = "io.domicile.mobility.trip".parse().unwrap();
    let body = trip(7);
    let encoded = serde_json::to_vec(&body).unwrap();

    // 1. Durable single-document writes.
    let n = 200;
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for i in 0..n {
        let change = Change::Put { doctype: doctype.clone(), id: format!("w{i}").parse().unwrap(), body: body.clone() };
        let t = Instant::now();
        me.commit(&[change], &Author::Resident, 1, &[]).unwrap();
        ours.push(t.elapsed());
        let t = Instant::now();
        raw.insert(format!("w{i}"), encoded.as_slice()).unwrap();
        raw.flush().unwrap();
        base.push(t.elapsed());
    }
    let (w, wb) = (median(ours), median(base));

    // 2. Point reads.
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for round in 0..20 {
        let t = Instant::now();
        for i in 0..n {
            std::hint::black_box(me.get(&doctype, &format!("w{}", (i * 7 + round) % n).parse().unwrap()).unwrap());
        }
        ours.push(t.elapsed() / n as u32);
        let t = Instant::now();
        for i in 0..n {
            std::hint::black_box(raw.get(format!("w{}", (i * 7 + round) % n)).unwrap());
        }
        base.push(t.elapsed() / n as u32);
    }
    let (r, rb) = (median(ours), median(base));

    // 3. 1% of 100k through the index vs a full scan.
    let total = 100_000u64;
    let load = Instant::now();
    for chunk in (0..total).collect::<Vec<_>>().chunks(1000) {
        let changes: Vec<Change> = chunk
            .iter()
            .map(|&i| Change::Put { doctype: doctype.clone(), id: format!("t{i:06}").parse().unwrap(), body: trip(i) })
            .collect();
        me.commit(&changes, &Author::Resident, 1, &[]).unwrap();
    }
    let load = load.elapsed();
    let run = |selector: &str| {
        let query = Query { selector: Selector::parse(selector).unwrap(), ..Query::all(doctype.clone()) };
        let uses_index = me.query(query.clone()).unwrap().uses_index();
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..5 {
            let t = Instant::now();
            count = me.query_all(query.clone()).unwrap().len();
            times.push(t.elapsed());
        }
        (median(times), count, uses_index)
    };
    let (indexed, hits, used) = run(r#"{"date": "2026-02-10"}"#);
    let (scan, scan_hits, scan_used) = run(r#"{"source": "2026-02-10"}"#);
    assert!(used && !scan_used && hits == scan_hits);

    println!("store benchmarks (medians; each ratio is against a baseline measured in this run)");
    println!(
        "  durable write      {:>10.1} us   raw sled insert+flush {:>10.1} us   ratio {:.2}x",
        micros(w),
        micros(wb),
        micros(w) / micros(wb)
    );
    println!(
        "  point read         {:>10.2} us   raw sled get          {:>10.2} us   ratio {:.2}x",
        micros(r),
        micros(rb),
        micros(r) / micros(rb)
    );
    println!(
        "  1% range of {total}: indexed {:>9.1} ms   full scan {:>9.1} ms   ({hits} documents)   speed-up {:.1}x",
        indexed.as_secs_f64() * 1e3,
        scan.as_secs_f64() * 1e3,
        scan.as_secs_f64() / indexed.as_secs_f64()
    );
    println!("  (loading {total} documents in commits of 1000 took {:.1} s)", load.as_secs_f64());
}
