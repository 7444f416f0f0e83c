//! The three sample campaigns (`sample-apps/campaigns/`) end to end, as
//! their organisers would run them: each filled in with two aggregators'
//! keys, a deadline and loopback URLs, signed, added to a real home of
//! residents who hold the sample data (each their own electricity), two
//! real `domicile aggregator serve` processes per campaign, every resident
//! joining with their neighbourhood; after the deadline, each released
//! result is what the residents' own apps say, neighbourhood by
//! neighbourhood, and comes back into their spaces.
//!
//! - Energy (histogram per IRIS, noise epsilon 1): each IRIS's counts
//!   within the noise of the true ones, over exactly its participants.
//! - Mobility (the survey week's km per mode, per postcode): each
//!   postcode's exact sums.
//! - Health (at least 20 participants): the two postcodes, each too small
//!   alone, released together as the others, exactly.
//!
//! Then the energy-insights app shows a participant where their own
//! January falls among their IRIS's households, from the result in their
//! space, and nothing of it once the resident revokes its grant.

#[path = "common/aggregators.rs"]
mod aggregators;
mod common;

use std::collections::BTreeMap;

use aggregators::{collect_after, free_port, Organisations, Running};
use common::{repo, sample_data, sample_gpx, sample_package, TestHome};
use domicile_campaign::{Aggregation, Campaign};
use serde_json::{json, Value};

const RESIDENTS: usize = 20;

/// Resident `i`'s IRIS (energy) and postcode (mobility, health).
fn neighbourhoods(i: usize) -> (&'static str, &'static str) {
    (if i < RESIDENTS / 2 { "443090101" } else { "443090102" }, if i.is_multiple_of(2) { "44000" } else { "44100" })
}

/// The sample daily indexes, resident `i`'s household using `0.5 + 0.08 i`
/// times as much.
fn daily_index_of(i: usize, dir: &std::path::Path) -> std::path::PathBuf {
    let factor = 0.5 + 0.08 * i as f64;
    let sample = std::fs::read_to_string(sample_data("enedis-daily-index-2025-2026.csv")).unwrap();
    let scaled: Vec<String> = sample
        .lines()
        .map(|line| match line.split_once(';') {
            Some((at, wh)) if at.starts_with("20") => format!("{at};{}", (wh.parse::<f64>().unwrap() * factor).round()),
            _ => line.to_owned(),
        })
        .collect();
    let path = dir.join(format!("daily-index-{i}.csv"));
    std::fs::write(&path, scaled.join("\n") + "\n").unwrap();
    path
}

/// A sample campaign, running: its two aggregators, as signed.
struct RunningCampaign {
    campaign: Campaign,
    leader: Running,
    _helper: Running,
}

/// Fills in sample campaign `file` for aggregators on loopback and
/// `deadline_ms`, signs it as its organiser, has `home` trust the
/// organiser and add it, and starts both aggregators, the leader taking
/// the reports `home` attests.
fn start(home: &TestHome, file: &str, deadline_ms: u64) -> RunningCampaign {
    let dir = home.path().join(format!("organisers-{file}"));
    std::fs::create_dir(&dir).unwrap();
    let organisations = Organisations::new(&dir);
    let mut campaign: Value =
        serde_json::from_slice(&std::fs::read(repo().join("sample-apps/campaigns").join(file)).unwrap()).unwrap();
    let leader_port = free_port();
    let names = [0, 1].map(|i| campaign["aggregators"][i]["name"].as_str().unwrap().to_owned());
    campaign["aggregators"] = organisations.aggregators([&names[0], &names[1]], leader_port);
    campaign["deadline_ms"] = json!(deadline_ms);
    let campaign = organisations.sign(&campaign);
    let (leader, helper) = organisations.start_for(home, leader_port);
    RunningCampaign { campaign, leader, _helper: helper }
}

/// What the released results must be: for each neighbourhood released
/// (None: the others), the counts or sums of its participants' answers.
type Expected = BTreeMap<Option<String>, (u64, Vec<f64>)>;

/// Adds `answer` (as the campaign's app gave it) to what `released_as` must show.
fn expect(expected: &mut Expected, campaign: &Campaign, released_as: Option<&str>, answer: &Value) {
    let (count, figures) = expected.entry(released_as.map(str::to_owned)).or_insert_with(|| {
        let length = match &campaign.aggregation {
            Aggregation::Histogram { bounds } => bounds.len() + 1,
            Aggregation::SumVec { length, .. } => *length,
            Aggregation::Sum { .. } => 1,
        };
        (0, vec![0.0; length])
    });
    *count += 1;
    match &campaign.aggregation {
        Aggregation::Histogram { bounds } => {
            let value = answer.as_f64().unwrap();
            figures[bounds.iter().filter(|b| **b <= value).count()] += 1.0;
        }
        Aggregation::SumVec { .. } => {
            for (sum, value) in figures.iter_mut().zip(answer.as_array().unwrap()) {
                *sum += value.as_f64().unwrap().round();
            }
        }
        Aggregation::Sum { .. } => figures[0] += answer.as_f64().unwrap().round(),
    }
}

#[test]
fn the_three_sample_campaigns_run_end_to_end_and_give_what_the_residents_data_says() {
    let home = TestHome::new();
    let apps =
        ["energy-importer", "energy-insights", "gpx-importer", "data-donation", "health-importer", "health-spending"];
    let packages: Vec<String> = apps.iter().map(|a| sample_package(a).to_str().unwrap().to_owned()).collect();
    for i in 0..RESIDENTS {
        let name = format!("r{i}");
        home.ok(&["resident", "add", &name]);
        for package in &packages {
            home.ok(&["--resident", &name, "install", package, "--grant", "all"]);
        }
        let index = daily_index_of(i, home.path());
        home.ok(&["--resident", &name, "import", "io.domicile.sample.energy-importer", index.to_str().unwrap()]);
        home.ok(&["--resident", &name, "import", "io.domicile.sample.gpx-importer", sample_gpx().to_str().unwrap()]);
        let fhir = sample_data("fhir-health-2026.json");
        home.ok(&["--resident", &name, "import", "io.domicile.sample.health-importer", fhir.to_str().unwrap()]);
    }
    // 60 joins take about 10 s here; the deadline leaves them three times that.
    let deadline_ms = domicile_aggregator::now_ms() + 30_000;
    let campaigns = [
        start(&home, "energy-neighbourhood.json", deadline_ms),
        start(&home, "mobility-survey.json", deadline_ms),
        start(&home, "health-out-of-pocket.json", deadline_ms),
    ];

    let mut expected: Vec<Expected> = vec![Expected::new(); campaigns.len()];
    for i in 0..RESIDENTS {
        let name = format!("r{i}");
        let (iris, postcode) = neighbourhoods(i);
        for (running, expected) in campaigns.iter().zip(&mut expected) {
            let campaign = &running.campaign;
            let neighbourhood = if campaign.id.contains("energie") { iris } else { postcode };
            let joined = home
                .ok(&[
                    "--json",
                    "--resident",
                    &name,
                    "campaign",
                    "join",
                    &campaign.id,
                    "--neighbourhood",
                    neighbourhood,
                ])
                .json();
            assert_eq!(joined["status"]["state"], "sent", "{joined}");
            // What the resident's own app says, as the campaign reads it.
            let input = campaign.app_input();
            let output =
                home.ok(&["--json", "--resident", &name, "run", &campaign.question.app, "--input", &input]).json();
            let answer = campaign.answer_in(&output).unwrap();
            // Each neighbourhood here has 10 participants: alone when the minimum is 10.
            let alone = campaign.minimum_batch <= (RESIDENTS / 2) as u64;
            expect(expected, campaign, alone.then_some(neighbourhood), &answer);
        }
    }

    for (running, expected) in campaigns.iter().zip(&expected) {
        let campaign = &running.campaign;
        let collected = collect_after(deadline_ms, &running.leader);
        let released: BTreeMap<Option<String>, (u64, Vec<f64>)> = collected["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let figures = match &r["aggregate"] {
                    Value::Array(counts) => counts.iter().map(|c| c.as_f64().unwrap()).collect(),
                    sum => vec![sum.as_f64().unwrap()],
                };
                (r["neighbourhood"].as_str().map(str::to_owned), (r["reports"].as_u64().unwrap(), figures))
            })
            .collect();
        assert_eq!(released.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "{collected}");
        for (neighbourhood, (reports, figures)) in expected {
            let (found_reports, found) = &released[neighbourhood];
            assert_eq!(found_reports, reports, "{}: {neighbourhood:?}: {collected}", campaign.id);
            if campaign.epsilon.is_some() {
                // Discrete Laplace noise of scale 2 from each aggregator: 30 is
                // more than ten times its spread.
                for (found, expected) in found.iter().zip(figures) {
                    assert!((found - expected).abs() <= 30.0, "{}: {found} for {expected}: {collected}", campaign.id);
                }
                assert!(collected["signed"][0]["aggregate"]["NoisyCounts"].is_array(), "{collected}");
            } else {
                assert_eq!(found, figures, "{}: {neighbourhood:?}: {collected}", campaign.id);
            }
        }
        // The result comes back into a participant's space.
        home.ok(&["--resident", "r1", "campaign", "result", &campaign.id]);
    }
    let kept = home.ok(&["--json", "--resident", "r1", "docs", "io.domicile.campaign.result"]).json();
    let by_campaign: BTreeMap<&str, &Value> =
        kept.as_array().unwrap().iter().map(|d| (d["body"]["campaign"].as_str().unwrap(), &d["body"])).collect();
    assert_eq!(by_campaign["fr.nantes.energie-janvier-2026"]["neighbourhood"], "443090101", "{kept}");
    assert_eq!(by_campaign["fr.larochelle.mobilite-mars-2026"]["neighbourhood"], "44100", "{kept}");
    assert_eq!(by_campaign["fr.lyon.reste-a-charge-sante-2026"]["neighbourhood"], Value::Null, "{kept}");
    assert_eq!(by_campaign["fr.lyon.reste-a-charge-sante-2026"]["reports"], RESIDENTS, "{kept}");

    // Energy insights places r1's own January among its IRIS's households.
    let insights = home.ok(&["--json", "--resident", "r1", "run", "io.domicile.sample.energy-insights"]).json();
    let standing = &insights["neighbourhoods"][0];
    assert_eq!(standing["campaign"], "fr.nantes.energie-janvier-2026", "{insights}");
    assert_eq!(standing["neighbourhood"], "443090101", "{insights}");
    assert_eq!(standing["participants"], RESIDENTS / 2, "{insights}");
    let january = insights["months"]["2026-01"]["kwh"].as_f64().unwrap();
    assert!((standing["your_kwh"].as_f64().unwrap() - january).abs() < 0.1, "{insights}");
    let view = insights["view"].to_string();
    assert!(view.contains("households of your neighbourhood (443090101)"), "{view}");
    // Not granted the results, it shows none, and runs as before.
    home.ok(&["--resident", "r1", "revoke", "io.domicile.sample.energy-insights", "io.domicile.campaign.result:read"]);
    let without = home.ok(&["--json", "--resident", "r1", "run", "io.domicile.sample.energy-insights"]).json();
    assert!(without["neighbourhoods"].is_null() && without["months"]["2026-01"].is_object(), "{without}");
}
