//! What one report costs a resident's space, and an aggregator pair, for
//! the campaigns' three shapes: the report (Prio3's shares and proof, then
//! HPKE for each aggregator) against Prio3's shards alone (the baseline,
//! in the same run), and the verification of one report by both
//! aggregators. Prints the bytes of a report. `cargo bench -p domicile-campaign`.

use criterion::{criterion_group, criterion_main, Criterion};
use domicile_campaign::{Aggregation, Aggregator, AggregatorKeys, AggregatorRole, Campaign, Question};
use prio::vdaf::prio3::{Prio3Histogram, Prio3Sum, Prio3SumVec};
use prio::vdaf::Client;
use serde_json::{json, Value};

const NOW: u64 = 0;

fn campaign(aggregation: Aggregation, keys: &[AggregatorKeys; 2]) -> Campaign {
    let aggregator = |name: &str, keys: &AggregatorKeys| Aggregator {
        name: name.into(),
        url: format!("https://{name}.example"),
        hpke_public_key: keys.public.clone(),
        result_key: keys.result_public.clone(),
    };
    Campaign {
        id: "bench.campaign".into(),
        organiser: "bench".into(),
        purpose: "measure".into(),
        question: Question {
            app: "bench".into(),
            computes: "bench".into(),
            unit: "kWh".into(),
            input: serde_json::Value::Null,
            answer: String::new(),
            answers: Vec::new(),
            rounded: false,
        },
        aggregation,
        aggregators: [aggregator("leader", &keys[0]), aggregator("helper", &keys[1])],
        minimum_batch: 2,
        epsilon: None,
        deadline_ms: u64::MAX,
        published_to: "bench".into(),
        neighbourhoods: None,
    }
}

fn bench(c: &mut Criterion) {
    let keys = [AggregatorKeys::generate(), AggregatorKeys::generate()];
    // The energy histogram (kWh of a month, 20 buckets), a year of monthly
    // kWh (12 numbers up to 5,000) and one sum (km of a week).
    let bounds: Vec<f64> = (1..20).map(|i| f64::from(i) * 50.0).collect();
    let shapes: [(&str, Aggregation, Value); 3] = [
        ("histogram-20", Aggregation::Histogram { bounds }, json!(312.5)),
        (
            "sumvec-12",
            Aggregation::SumVec { length: 12, max: 5000 },
            json!([410, 380, 300, 250, 200, 150, 120, 130, 180, 260, 330, 400]),
        ),
        ("sum", Aggregation::Sum { max: 10_000 }, json!(123)),
    ];
    let nonce = [3u8; 16];
    for (name, aggregation, answer) in shapes {
        let campaign = campaign(aggregation.clone(), &keys);
        let report = campaign.report(&answer, None, NOW).unwrap();
        eprintln!("{name}: a report is {} bytes as JSON", serde_json::to_vec(&report).unwrap().len());
        let mut group = c.benchmark_group(name);
        match &aggregation {
            Aggregation::Histogram { bounds } => {
                let vdaf = Prio3Histogram::new_histogram(2, bounds.len() + 1, 5).unwrap();
                group.bench_function("prio3 shard alone", |b| b.iter(|| vdaf.shard(b"ctx", &7, &nonce).unwrap()));
            }
            Aggregation::SumVec { length, max } => {
                let vdaf = Prio3SumVec::new_sum_vec(2, u128::from(*max), *length, 4).unwrap();
                let m: Vec<u128> = vec![300; *length];
                group.bench_function("prio3 shard alone", |b| b.iter(|| vdaf.shard(b"ctx", &m, &nonce).unwrap()));
            }
            Aggregation::Sum { max } => {
                let vdaf = Prio3Sum::new_sum(2, *max).unwrap();
                group.bench_function("prio3 shard alone", |b| b.iter(|| vdaf.shard(b"ctx", &123, &nonce).unwrap()));
            }
        }
        group.bench_function("report (shard, prove, encrypt)", |b| {
            b.iter(|| campaign.report(&answer, None, NOW).unwrap())
        });
        let roles = [0, 1].map(|i| AggregatorRole::new(campaign.clone(), i, &keys[i].secret, [7; 32]).unwrap());
        group.bench_function("verify by both aggregators", |b| {
            b.iter(|| {
                let started = [roles[0].start(&report).unwrap(), roles[1].start(&report).unwrap()];
                let message = roles[0]
                    .combine(&started[0].state, [&started[0].verifier_share, &started[1].verifier_share])
                    .unwrap();
                [
                    roles[0].finish(&started[0].state, &message).unwrap(),
                    roles[1].finish(&started[1].state, &message).unwrap(),
                ]
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
