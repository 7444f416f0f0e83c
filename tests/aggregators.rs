//! A campaign's two aggregators as their organisations run them: two real
//! `domicile aggregator serve` processes on loopback, each with its own
//! store and key, the leader taking only the reports of the nodes it is
//! told to trust.
//!
//! - Reports made by hand: a duplicate, an unattested one and a late one
//!   are refused and counted; the helper answers the leader alone; after
//!   the deadline the aggregate is exactly the histogram of the answers,
//!   and nothing comes out before it.
//! - Residents of a real home join, most adding their postcode: the
//!   campaign's app runs in each space, the attested report leaves through
//!   the outbox to the leader; one who joins twice, one without the app,
//!   are refused; one who leaves is not counted; each neighbourhood of the
//!   minimum batch gets exactly the histogram of what its residents' data
//!   says, the smaller ones count with those of none.
//! - `domicile bench-campaign` measures it all end to end, its result exact.

#[path = "common/aggregators.rs"]
mod aggregators;
mod common;

use aggregators::{collect_after, free_port, get, post, settled, Organisations};
use common::TestHome;
use domicile_campaign::{Attester, CampaignResult};
use serde_json::{json, Value};

/// The bucket of `km` among `bounds`.
fn bucket(bounds: &[f64], km: f64) -> usize {
    bounds.iter().filter(|b| **b <= km).count()
}

#[test]
fn two_aggregators_release_the_exact_histogram_after_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let organisations = Organisations::new(dir.path());
    let now = domicile_aggregator::now_ms();
    let deadline_ms = now + 8_000;
    let campaign = organisations.sign(&json!({
        "id": "fr.larochelle.mobility-2026",
        "organiser": "La Rochelle",
        "purpose": "The mobility plan: how far people cycle",
        "question": { "app": "io.domicile.sample.mobility-footprint", "computes": "km by bike last week", "unit": "km" },
        "aggregation": { "type": "histogram", "bounds": [10.0, 20.0, 50.0] },
        "aggregators": [
            { "name": "city", "url": "http://127.0.0.1:1", "hpke_public_key": organisations.leader["public_key"], "result_key": organisations.leader["result_key"] },
            { "name": "observatory", "url": "http://127.0.0.1:2", "hpke_public_key": organisations.helper["public_key"], "result_key": organisations.helper["result_key"] },
        ],
        "minimum_batch": 20,
        "deadline_ms": deadline_ms,
        "published_to": "every participant",
    }));
    let node = Attester::from_seed([3; 32]);
    let helper = organisations.serve("helper", &[]);
    let leader = organisations.serve("leader", &["--helper", &helper.url.clone(), "--attester", &node.public_key()]);

    // The helper answers the leader alone.
    let report = campaign.report(&json!(3.0), None, now).unwrap();
    let (status, _) = post(&format!("{}/helper/prepare", helper.url), &json!(report), None);
    assert_eq!(status, 401, "a stranger asks the helper");
    // A report no trusted node attests is refused.
    let stranger = Attester::from_seed([4; 32]).attest(report.clone(), &"ab".repeat(32));
    let (status, answer) = post(&format!("{}/reports", leader.url), &json!(stranger), None);
    assert_eq!(status, 409, "unattested: {answer}");

    let mut expected = vec![0u64; 4];
    for i in 0..30 {
        let km = f64::from(i * 3);
        expected[bucket(&[10.0, 20.0, 50.0], km)] += 1;
        let report = campaign.report(&json!(km), None, domicile_aggregator::now_ms()).unwrap();
        let attested = node.attest(report, &node.participant(&campaign.id, &format!("resident{i}")));
        let (status, answer) = post(&format!("{}/reports", leader.url), &json!(attested), None);
        assert_eq!(status, 202, "{answer}");
        if i == 0 {
            let (again, answer) = post(&format!("{}/reports", leader.url), &json!(attested), None);
            assert_eq!(again, 409, "the same report twice: {answer}");
        }
        if i == 10 {
            // A report whose helper share is another report's: the leader's
            // share opens, the helper refuses its own within the batch, the
            // others of the batch are verified.
            let mut mixed = campaign.report(&json!(km), None, domicile_aggregator::now_ms()).unwrap();
            mixed.shares[1] =
                campaign.report(&json!(km), None, domicile_aggregator::now_ms()).unwrap().shares[1].clone();
            let attested = node.attest(mixed, &node.participant(&campaign.id, "mixed"));
            assert_eq!(post(&format!("{}/reports", leader.url), &json!(attested), None).0, 202);
        }
    }
    let (status, answer) = post(&format!("{}/collect", leader.url), &json!({}), None);
    assert_eq!(status, 409, "nothing before the deadline: {answer}");
    assert_eq!(get(&format!("{}/result", leader.url)).0, 404, "no result before it is released");

    let result = collect_after(deadline_ms, &leader);
    assert_eq!(result["reports"], 30, "{result}");
    assert_eq!(result["results"], json!([{ "neighbourhood": null, "reports": 30, "aggregate": expected }]), "{result}");
    // The result as both signed it, which a participant's home checks with the campaign's keys.
    let (status, signed) = get(&format!("{}/result", leader.url));
    assert_eq!(status, 200, "{signed}");
    let signed: Vec<CampaignResult> = serde_json::from_value(signed).unwrap();
    signed[0].verify(&campaign).expect("signed by both aggregators");
    assert_eq!(json!(signed), result["signed"]);
    // Collected again: the same result, not a new one.
    let (_, again) = post(&format!("{}/collect", leader.url), &json!({}), None);
    assert_eq!(again["signed"], result["signed"]);
    let status = settled(&leader);
    assert_eq!(status["counts"]["verified"], 30, "{status}");
    assert_eq!(status["counts"]["refused"]["duplicate"], 1, "{status}");
    assert_eq!(status["counts"]["refused"]["unattested"], 1, "{status}");
    assert_eq!(status["counts"]["refused"]["unreadable"], 1, "the helper refused the mixed one: {status}");
    // After the deadline, a report is refused.
    let late = node.attest(campaign.report(&json!(1.0), None, deadline_ms).unwrap(), &"cd".repeat(32));
    let (status, _) = post(&format!("{}/reports", leader.url), &json!(late), None);
    assert_eq!(status, 409, "late");
}

/// The neighbourhood resident `i` adds when joining: 44000 for the even,
/// 44100 for the odd up to 190, 17000 for two (too few to be released
/// alone), none for the last three.
fn neighbourhood_of(i: usize) -> Option<&'static str> {
    match i {
        _ if i.is_multiple_of(2) => Some("44000"),
        191 | 193 => Some("17000"),
        195.. => None,
        _ => Some("44100"),
    }
}

const RESIDENTS: usize = 200;

#[test]
fn residents_join_from_their_home_and_the_aggregate_is_exactly_what_their_data_says() {
    let home = TestHome::new();
    let footprint = common::sample_package("mobility-footprint");
    // Each resident's trips: resident i cycled 4.5 * i km in March.
    let distances: Vec<f64> = (0..RESIDENTS).map(|i| 4.5 * i as f64).collect();
    for (i, km) in distances.iter().enumerate() {
        let name = format!("r{i}");
        home.ok(&["resident", "add", &name]);
        home.ok(&["--resident", &name, "install", footprint.to_str().unwrap(), "--grant", "all"]);
        let trip = json!({
            "start": "2026-03-02T08:00:00Z", "end": "2026-03-02T08:30:00Z", "date": "2026-03-02", "month": "2026-03",
            "distance_m": km * 1000.0, "duration_s": 1800, "mode": "bike", "points": 10, "source": "test.gpx"
        });
        home.ok(&["--resident", &name, "put", "io.domicile.mobility.trip", &trip.to_string()]);
    }
    home.ok(&["resident", "add", "without-the-app"]);

    let organisations = Organisations::new(home.path());
    let leader_port = free_port();
    // The joins take 7 s here; the deadline leaves them four times that.
    let deadline_ms = domicile_aggregator::now_ms() + 30_000;
    let bounds = [10.0, 20.0, 40.0];
    let campaign = organisations.sign(&json!({
        "id": "fr.larochelle.velo-2026",
        "organiser": "La Rochelle",
        "purpose": "The mobility plan: how far people cycle",
        "question": {
            "app": "io.domicile.sample.mobility-footprint", "computes": "km travelled in all", "unit": "km",
            "answer": "/total_km",
        },
        "aggregation": { "type": "histogram", "bounds": bounds },
        "aggregators": organisations.aggregators(["city", "observatory"], leader_port),
        "minimum_batch": 5,
        "deadline_ms": deadline_ms,
        "published_to": "every participant",
        "neighbourhoods": "postcode",
    }));
    let (leader, _helper) = organisations.start_for(&home, leader_port);

    let terms = home.ok(&["campaign", "show", &campaign.id]).stdout;
    assert!(terms.contains("You may add your neighbourhood, a postcode"), "{terms}");
    let mistyped = home.run(&["--resident", "r0", "campaign", "join", &campaign.id, "--neighbourhood", "Nantes"]);
    assert!(!mistyped.ok && mistyped.stderr.contains("is a postcode (5 digits"), "{}", mistyped.stderr);
    for i in 0..RESIDENTS {
        let resident = format!("r{i}");
        let mut join = vec!["--json", "--resident", &resident, "campaign", "join", &campaign.id];
        join.extend(neighbourhood_of(i).map(|n| ["--neighbourhood", n]).into_iter().flatten());
        let joined = home.ok(&join).json();
        assert_eq!(joined["status"]["state"], "sent", "{joined}");
        assert_eq!(joined["destination"], format!("{}/reports", leader.url), "{joined}");
    }
    // One report per resident; none without the campaign's app.
    let again = home.run(&["--resident", "r1", "campaign", "join", &campaign.id]);
    assert!(
        !again.ok && again.stderr.contains("joined campaign `fr.larochelle.velo-2026` already"),
        "{}",
        again.stderr
    );
    let without = home.run(&["--resident", "without-the-app", "campaign", "join", &campaign.id]);
    assert!(!without.ok && without.stderr.contains("which you have not installed"), "{}", without.stderr);
    // What left, in the resident's outbox and audit log: a share for each aggregator, never the answer.
    let outbox = home.ok(&["--json", "--resident", "r3", "outbox"]).json();
    let report = &outbox[0];
    assert_eq!(report["campaign"], campaign.id, "{outbox}");
    let payload: Value = serde_json::from_str(report["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["report"]["shares"].as_array().unwrap().len(), 2, "{payload}");
    assert!(!report["payload"].as_str().unwrap().contains("13.5"), "the answer itself never leaves");
    let audit = home.ok(&["--json", "--resident", "r3", "audit"]).json();
    let sent = audit.as_array().unwrap().iter().filter(|e| e["destination"] == format!("{}/reports", leader.url));
    assert_eq!(sent.count(), 2, "queued, then sent: {audit}");

    // r2 leaves: not counted. r5 leaves and joins again: counted once.
    let left = home.ok(&["--json", "--resident", "r2", "campaign", "leave", &campaign.id]).json();
    assert_eq!(left["status"]["state"], "sent", "{left}");
    assert!(!home.run(&["--resident", "r2", "campaign", "leave", &campaign.id]).ok, "leaving twice");
    home.ok(&["--resident", "r5", "campaign", "leave", &campaign.id]);
    home.ok(&["--resident", "r5", "campaign", "join", &campaign.id, "--neighbourhood", "44100"]);

    // 44000 and 44100 each released alone; 17000's two with the three of
    // no neighbourhood, as the others.
    let mut expected: std::collections::BTreeMap<Option<&str>, Vec<u64>> = Default::default();
    for (i, km) in distances.iter().enumerate() {
        if i != 2 {
            let released_as = neighbourhood_of(i).filter(|n| *n != "17000");
            expected.entry(released_as).or_insert_with(|| vec![0; bounds.len() + 1])[bucket(&bounds, *km)] += 1;
        }
    }
    let expected_results: Vec<Value> = expected
        .iter()
        .map(|(n, counts)| json!({ "neighbourhood": n, "reports": counts.iter().sum::<u64>(), "aggregate": counts }))
        .collect();
    let early = home.run(&["--resident", "r3", "campaign", "result", &campaign.id]);
    assert!(!early.ok && early.stderr.contains("has not released the result yet"), "{}", early.stderr);
    let result = collect_after(deadline_ms, &leader);
    assert_eq!(result["reports"], RESIDENTS - 1, "{result}");
    let mut results = result["results"].as_array().unwrap().clone();
    results.sort_by_key(|r| r["neighbourhood"].as_str().map(str::to_owned));
    assert_eq!(results, expected_results, "{result}");
    // The result comes back into a participant's space, checked against
    // the campaign's keys: their neighbourhood's, and every other beside it.
    home.ok(&["--resident", "r3", "campaign", "result", &campaign.id]);
    let kept = home.ok(&["--json", "--resident", "r3", "docs", "io.domicile.campaign.result"]).json();
    let body = &kept[0]["body"];
    assert_eq!(body["neighbourhood"], "44100", "{kept}");
    assert_eq!(body["aggregate"], json!(expected[&Some("44100")]), "{kept}");
    assert_eq!(body["reports"], expected[&Some("44100")].iter().sum::<u64>(), "{kept}");
    assert_eq!(body["bounds"], json!(bounds), "{kept}");
    assert_eq!(body["neighbourhoods"].as_array().unwrap().len(), 3, "{kept}");
    // One of 17000, too few to be released alone: counted with the others.
    home.ok(&["--resident", "r191", "campaign", "result", &campaign.id]);
    let kept = home.ok(&["--json", "--resident", "r191", "docs", "io.domicile.campaign.result"]).json();
    assert_eq!(kept[0]["body"]["neighbourhood"], Value::Null, "{kept}");
    assert_eq!(kept[0]["body"]["aggregate"], json!(expected[&None]), "{kept}");
    // Not for one who left.
    let left = home.run(&["--resident", "r2", "campaign", "result", &campaign.id]);
    assert!(!left.ok && left.stderr.contains("not in campaign"), "{}", left.stderr);
    // The others get theirs without asking: the home's server brings the
    // result into each participant's space (here every second).
    std::fs::write(home.path().join("config.toml"), "[server]\ncampaign-results-every-s = 1\n").unwrap();
    let server = common::server::Server::start(&home);
    let result_of = |resident: &str| {
        home.ok(&["--json", "--resident", resident, "docs", "io.domicile.campaign.result"]).json()[0]["body"].clone()
    };
    for (i, released_as) in [(0, Some("44000")), (7, Some("44100")), (193, None), (199, None)] {
        let started = std::time::Instant::now();
        let body = loop {
            let body = result_of(&format!("r{i}"));
            if !body.is_null() || started.elapsed() > std::time::Duration::from_secs(60) {
                break body;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        assert_eq!(body["neighbourhood"], json!(released_as), "r{i}: {body}");
        assert_eq!(body["aggregate"], json!(expected[&released_as]), "r{i}: {body}");
    }
    assert_eq!(result_of("r2"), Value::Null, "not for one who left");
    drop(server);
    let status = settled(&leader);
    assert_eq!(status["counts"]["withdrawn"], 2, "{status}");
    assert_eq!(status["counts"]["refused"], json!({}), "{status}");
    // After the deadline, the leader refuses a withdrawal: the report was counted.
    let late = home.run(&["--resident", "r4", "campaign", "leave", &campaign.id]);
    assert!(!late.ok && late.stderr.contains("HTTP 409"), "{}", late.stderr);
}

#[test]
fn bench_campaign_measures_a_campaign_end_to_end_and_its_result_is_exact() {
    let out = aggregators::domicile()
        .args(["--json", "bench-campaign", "--reports", "30", "--clients", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["reports"].as_u64(), report["exact"].as_bool()), (Some(30), Some(true)), "{report}");
    for figure in ["report_us", "prio_shard_us", "report_bytes", "verified_per_s", "in_process_verified_per_s"] {
        assert!(report[figure].as_f64().is_some_and(|f| f > 0.0), "{figure}: {report}");
    }
    let refused = aggregators::domicile().args(["bench-campaign", "--reports", "3"]).output().unwrap();
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr).contains("at least the campaign's minimum batch")
    );
}
