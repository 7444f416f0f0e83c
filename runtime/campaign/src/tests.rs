use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

use super::*;

/// A time before every test campaign's deadline.
const NOW: u64 = 1_780_000_000_000;

/// A campaign of `aggregation` with two fresh aggregators, their keys and
/// the verification key they share.
fn new_campaign(aggregation: Aggregation) -> (Campaign, [AggregatorKeys; 2]) {
    let keys = [AggregatorKeys::generate(), AggregatorKeys::generate()];
    let aggregator = |name: &str, port: u16, keys: &AggregatorKeys| Aggregator {
        name: name.into(),
        url: format!("http://127.0.0.1:{port}"),
        hpke_public_key: keys.public.clone(),
        result_key: keys.result_public.clone(),
    };
    let campaign = Campaign {
        id: "fr.nantes.energy-2026".into(),
        organiser: "Nantes Métropole".into(),
        purpose: "Compare each household's winter with its neighbourhood's".into(),
        question: Question {
            app: "io.domicile.sample.energy-insights".into(),
            computes: "kWh of January 2026".into(),
            unit: "kWh".into(),
            input: serde_json::Value::Null,
            answer: String::new(),
            answers: Vec::new(),
            rounded: false,
        },
        aggregation,
        aggregators: [
            aggregator("Nantes Métropole", 9001, &keys[0]),
            aggregator("Observatoire indépendant", 9002, &keys[1]),
        ],
        minimum_batch: 10,
        epsilon: None,
        deadline_ms: 1_800_000_000_000,
        published_to: "every participant, and the city's open data portal".into(),
        neighbourhoods: None,
    };
    (campaign, keys)
}

fn roles(campaign: &Campaign, keys: &[AggregatorKeys; 2]) -> [AggregatorRole; 2] {
    let verify_key = [7u8; 32];
    [0, 1].map(|i| AggregatorRole::new(campaign.clone(), i, &keys[i].secret, verify_key).unwrap())
}

/// What the two aggregators make of `reports`, run step by step as they
/// will across their processes: the aggregate of those whose proof
/// verified, and how many were refused.
fn aggregate(campaign: &Campaign, roles: &[AggregatorRole; 2], reports: &[Report]) -> (Result<Aggregate>, usize) {
    let (mut outputs, mut refused): ([Vec<Vec<u8>>; 2], usize) = ([Vec::new(), Vec::new()], 0);
    for report in reports {
        let verified = (|| -> Result<[Vec<u8>; 2]> {
            let started = [roles[0].start(report)?, roles[1].start(report)?];
            let message =
                roles[0].combine(&started[0].state, [&started[0].verifier_share, &started[1].verifier_share])?;
            Ok([roles[0].finish(&started[0].state, &message)?, roles[1].finish(&started[1].state, &message)?])
        })();
        match verified {
            Ok([leader, helper]) => {
                outputs[0].push(leader);
                outputs[1].push(helper);
            }
            Err(_) => refused += 1,
        }
    }
    let shares = [roles[0].aggregate(&outputs[0]).unwrap(), roles[1].aggregate(&outputs[1]).unwrap()];
    (unshard(campaign, [&shares[0], &shares[1]], outputs[0].len() as u64), refused)
}

#[test]
fn two_hundred_residents_histogram_is_the_exact_count_of_their_answers() {
    let (campaign, keys) = new_campaign(Aggregation::Histogram { bounds: vec![100.0, 200.0, 400.0, 800.0] });
    let roles = roles(&campaign, &keys);
    let answers: Vec<f64> = (0..200).map(|i| (i * 7 % 1000) as f64 + 0.5).collect();
    let reports: Vec<Report> = answers.iter().map(|a| campaign.report(&json!(a), None, NOW).unwrap()).collect();
    let mut expected = vec![0u128; 5];
    for a in &answers {
        expected[[100.0, 200.0, 400.0, 800.0].iter().filter(|b| **b <= *a).count()] += 1;
    }
    let (aggregate, refused) = aggregate(&campaign, &roles, &reports);
    assert_eq!(refused, 0);
    assert_eq!(aggregate.unwrap(), Aggregate::Counts(expected));
}

#[test]
fn with_differential_privacy_each_count_is_off_by_the_noise_and_no_more() {
    let bounds: Vec<f64> = (1..20).map(|i| f64::from(i) * 10.0).collect();
    let (mut campaign, keys) = new_campaign(Aggregation::Histogram { bounds: bounds.clone() });
    campaign.epsilon = Some(1.0);
    let roles = roles(&campaign, &keys);
    let answers: Vec<f64> = (0..200).map(|i| f64::from(i % 200)).collect();
    let mut exact = vec![0i128; 20];
    for a in &answers {
        exact[bounds.iter().filter(|b| **b <= *a).count()] += 1;
    }
    let reports: Vec<Report> = answers.iter().map(|a| campaign.report(&json!(a), None, NOW).unwrap()).collect();
    let Aggregate::NoisyCounts(noisy) = aggregate(&campaign, &roles, &reports).0.unwrap() else { panic!("not noisy") };
    // Each aggregator adds discrete Laplace noise of scale 2/epsilon = 2
    // (a histogram's sensitivity is 2) to each count: beyond 40 from 0,
    // each draw has a chance below 2e^-20, so the two together stay
    // within 80 of the exact count, 40 draws in all.
    for (bucket, (noisy, exact)) in noisy.iter().zip(&exact).enumerate() {
        assert!((noisy - exact).abs() <= 80, "bucket {bucket}: {noisy} against {exact}");
    }
    // And noise there is: all 20 counts exact has a chance below 0.3^20.
    assert_ne!(noisy, exact, "no noise was added");
}

#[test]
fn sums_and_vectors_are_the_exact_sums() {
    let (campaign, keys) = new_campaign(Aggregation::Sum { max: 5000 });
    let reports: Vec<Report> = (0..20u64).map(|i| campaign.report(&json!(i * 100), None, NOW).unwrap()).collect();
    assert_eq!(aggregate(&campaign, &roles(&campaign, &keys), &reports).0.unwrap(), Aggregate::Sum(19_000));

    let (campaign, keys) = new_campaign(Aggregation::SumVec { length: 3, max: 1000 });
    let reports: Vec<Report> =
        (0..12u64).map(|i| campaign.report(&json!([i, 2 * i, 1000]), None, NOW).unwrap()).collect();
    assert_eq!(
        aggregate(&campaign, &roles(&campaign, &keys), &reports).0.unwrap(),
        Aggregate::Counts(vec![66, 132, 12_000])
    );
}

#[test]
fn an_answer_out_of_bounds_is_refused_before_anything_leaves() {
    let (sum, _) = new_campaign(Aggregation::Sum { max: 100 });
    for answer in [json!(101), json!(-1), json!(1.5), json!("10"), Value::Null] {
        assert!(matches!(sum.report(&answer, None, NOW), Err(CampaignError::OutOfBounds(_))), "{answer}");
    }
    let (vector, _) = new_campaign(Aggregation::SumVec { length: 2, max: 10 });
    for answer in [json!([1]), json!([1, 11]), json!([1, 2, 3])] {
        assert!(matches!(vector.report(&answer, None, NOW), Err(CampaignError::OutOfBounds(_))), "{answer}");
    }
    let (histogram, _) = new_campaign(Aggregation::Histogram { bounds: vec![1.0] });
    assert!(matches!(histogram.report(&json!("a lot"), None, NOW), Err(CampaignError::OutOfBounds(_))));
    let after = histogram.deadline_ms + 1;
    assert!(
        matches!(histogram.report(&json!(0.5), None, after), Err(CampaignError::Closed { .. })),
        "past its deadline"
    );
}

#[test]
fn a_report_whose_proof_is_forged_is_refused_and_the_aggregate_unchanged() {
    let (campaign, keys) = new_campaign(Aggregation::Sum { max: 10 });
    let roles = roles(&campaign, &keys);
    let mut reports: Vec<Report> = (0..10).map(|_| campaign.report(&json!(1), None, NOW).unwrap()).collect();
    // A client of its own, which encrypts to the aggregators a leader's
    // share altered after the proof was made (its measurement part).
    let mut forged = campaign.report(&json!(1), None, NOW).unwrap();
    let leader_share = {
        use hpke::Deserializable;
        let secret =
            <report::Kem as hpke::Kem>::PrivateKey::from_bytes(&hex::decode(&keys[0].secret).unwrap()).unwrap();
        let share = &forged.shares[0];
        hpke::single_shot_open::<report::Aead, report::Kdf, report::Kem>(
            &hpke::OpModeR::Base,
            &secret,
            &report::encapped_key(&share.encapped_key).unwrap(),
            &report::share_info(0),
            &hex::decode(&share.ciphertext).unwrap(),
            &report::share_aad(&forged.campaign, &forged.nonce, &forged.public_share, None),
        )
        .unwrap()
    };
    let mut altered = leader_share.clone();
    altered[0] ^= 1;
    let key = definition::public_key(&keys[0].public).unwrap();
    let (encapped, ciphertext) = hpke::single_shot_seal::<report::Aead, report::Kdf, report::Kem>(
        &hpke::OpModeS::Base,
        &key,
        &report::share_info(0),
        &altered,
        &report::share_aad(&forged.campaign, &forged.nonce, &forged.public_share, None),
    )
    .unwrap();
    use hpke::Serializable;
    forged.shares[0] =
        EncryptedShare { encapped_key: hex::encode(encapped.to_bytes()), ciphertext: hex::encode(ciphertext) };
    assert!(roles[0].start(&forged).is_ok(), "the forged share opens and decodes: only its proof tells");
    reports.push(forged);
    let (aggregate, refused) = aggregate(&campaign, &roles, &reports);
    assert_eq!(refused, 1, "the forged report is refused");
    assert_eq!(aggregate.unwrap(), Aggregate::Sum(10), "and counts for nothing");
}

#[test]
fn each_aggregator_opens_its_own_share_only() {
    let (campaign, keys) = new_campaign(Aggregation::Sum { max: 10 });
    let report = campaign.report(&json!(3), None, NOW).unwrap();
    let verify_key = [7u8; 32];
    let helper_posing_as_leader = AggregatorRole::new(campaign.clone(), 0, &keys[1].secret, verify_key).unwrap();
    assert!(helper_posing_as_leader.start(&report).is_err(), "the helper's key does not open the leader's share");
    let mut swapped = report.clone();
    swapped.shares.swap(0, 1);
    assert!(roles(&campaign, &keys)[1].start(&swapped).is_err(), "a share moved to the other aggregator");
    let mut other = report.clone();
    other.nonce = hex::encode([9u8; 16]);
    assert!(roles(&campaign, &keys)[0].start(&other).is_err(), "a share moved to another report");
}

#[test]
fn nothing_is_released_below_the_minimum_batch() {
    let (campaign, keys) = new_campaign(Aggregation::Sum { max: 10 });
    let reports: Vec<Report> = (0..9).map(|_| campaign.report(&json!(1), None, NOW).unwrap()).collect();
    let refused = aggregate(&campaign, &roles(&campaign, &keys), &reports).0.unwrap_err().to_string();
    assert!(refused.contains("9 reports, fewer than the campaign's minimum of 10"), "{refused}");
}

#[test]
fn a_campaign_opens_only_signed_by_a_trusted_key_and_valid() {
    let (campaign, _) = new_campaign(Aggregation::Histogram { bounds: vec![100.0, 200.0] });
    let organiser = SigningKey::from_bytes(&[1; 32]);
    let stranger = SigningKey::from_bytes(&[2; 32]);
    let (bytes, signature) = campaign.sign(&organiser).unwrap();
    let trusted = [organiser.verifying_key()];
    assert_eq!(Campaign::open(&bytes, &signature, &trusted).unwrap(), campaign);
    let (_, by_stranger) = campaign.sign(&stranger).unwrap();
    assert!(matches!(Campaign::open(&bytes, &by_stranger, &trusted), Err(CampaignError::Unsigned)));
    let altered = String::from_utf8(bytes.clone()).unwrap().replace("200.0", "2000.0").into_bytes();
    assert!(matches!(Campaign::open(&altered, &signature, &trusted), Err(CampaignError::Unsigned)), "bounds altered");
    assert!(matches!(Campaign::open(&bytes, "not hex", &trusted), Err(CampaignError::Unsigned)));

    let invalid = |change: fn(&mut Campaign)| {
        let mut c = campaign.clone();
        change(&mut c);
        c.check().unwrap_err().to_string()
    };
    assert!(
        invalid(|c| c.aggregation = Aggregation::Histogram { bounds: vec![2.0, 1.0] }).contains("above the one before")
    );
    assert!(invalid(|c| c.aggregation = Aggregation::Histogram { bounds: vec![f64::NAN] }).contains("finite"));
    assert!(invalid(|c| c.aggregators[1] = c.aggregators[0].clone()).contains("two aggregators are one"));
    assert!(invalid(|c| c.aggregators[0].url = "http://city.example".into()).contains("https://"));
    assert!(invalid(|c| c.aggregators[0].hpke_public_key = "00".into()).contains("64 hexadecimal"));
    assert!(invalid(|c| c.minimum_batch = 1).contains("at least 2"));
    assert!(invalid(|c| c.epsilon = Some(0.0)).contains("above 0"));
    assert!(invalid(|c| {
        c.aggregation = Aggregation::Sum { max: 10 };
        c.epsilon = Some(1.0);
    })
    .contains("a sum takes none"));
    assert!(invalid(|c| c.id = "Nantes/../x".into()).contains("its id"));
    assert!(invalid(|c| c.aggregation = Aggregation::Sum { max: 0 }).contains("max"));
}

#[test]
fn neighbourhoods_are_codes_of_the_kind_the_campaign_names_and_nothing_else() {
    for (kind, good, bad) in [
        (
            Neighbourhoods::Postcode,
            &["44000", "17000", "69001"][..],
            &["4400", "440000", "44 00", "Nantes", "4400A"][..],
        ),
        (
            Neighbourhoods::Iris,
            &["443090101", "2A0040000", "2B0330101"],
            &["44309010", "4430901011", "2C0040000", "44309O101", "44000", "éé3090101"],
        ),
    ] {
        for code in good {
            assert!(kind.admits(code), "{code}");
        }
        for code in bad {
            assert!(!kind.admits(code), "{code}");
        }
    }
    let (mut campaign, _) = new_campaign(Aggregation::Sum { max: 10 });
    assert!(campaign.report(&json!(3), Some("44000"), NOW).is_err(), "a campaign without neighbourhoods takes none");
    campaign.neighbourhoods = Some(Neighbourhoods::Postcode);
    assert!(campaign.terms().iter().any(|t| t.contains("your neighbourhood, a postcode")), "{:?}", campaign.terms());
    let report = campaign.report(&json!(3), Some("44000"), NOW).unwrap();
    assert_eq!(report.neighbourhood.as_deref(), Some("44000"));
    assert!(
        campaign.report(&json!(3), None, NOW).unwrap().neighbourhood.is_none(),
        "adding one is the resident's choice"
    );
}

#[test]
fn batches_release_each_report_once_a_neighbourhood_alone_only_at_the_minimum() {
    let (mut campaign, _) = new_campaign(Aggregation::Sum { max: 10 });
    campaign.minimum_batch = 3;
    let reports = |spec: &[(&str, usize)]| -> Vec<(String, Option<String>)> {
        let mut reports = Vec::new();
        for (code, count) in spec {
            for i in 0..*count {
                reports.push((format!("{code}-{i}"), (!code.is_empty()).then(|| code.to_string())));
            }
        }
        reports
    };
    let shape = |batches: Vec<Batch>| -> Vec<(Option<String>, usize)> {
        batches.into_iter().map(|b| (b.neighbourhood, b.nonces.len())).collect()
    };
    // 44000 alone; 44100 (2) with those of none (1).
    let released = batches(&campaign, reports(&[("44000", 4), ("44100", 2), ("", 1)])).unwrap();
    assert_eq!(shape(released), [(Some("44000".into()), 4), (None, 3)]);
    // The others too few: only 44000's.
    let released = batches(&campaign, reports(&[("44000", 4), ("44100", 2)])).unwrap();
    assert_eq!(shape(released), [(Some("44000".into()), 4)]);
    // All too small alone, enough together.
    let released = batches(&campaign, reports(&[("44000", 1), ("44100", 1), ("17000", 1)])).unwrap();
    assert_eq!(shape(released), [(None, 3)]);
    // Fewer than the minimum in all: nothing.
    assert!(batches(&campaign, reports(&[("44000", 2)])).is_err());
}

#[test]
fn a_vector_is_read_from_one_pointer_per_number_and_measured_quantities_are_rounded_when_the_campaign_says() {
    let (mut campaign, _) = new_campaign(Aggregation::SumVec { length: 3, max: 500 });
    campaign.question.answers = vec!["/km/bike".into(), "/km/bus".into(), "/km/car".into()];
    let output = json!({ "km": { "bike": 12.4, "car": 80.6 } });
    assert_eq!(campaign.answer_in(&output).unwrap(), json!([12.4, 0, 80.6]), "no trip by bus: 0");
    assert!(campaign.report(&json!([12.4, 0, 80.6]), None, NOW).is_err(), "not whole, and not said to be rounded");
    campaign.question.rounded = true;
    campaign.check().unwrap();
    assert!(campaign.terms().iter().any(|t| t.contains("(rounded to the nearest whole)")));
    let shares = campaign.measurement(&json!([12.4, 0, 80.6])).unwrap();
    assert!(matches!(shares, definition::Measurement::SumVec(v) if v == [12, 0, 81]));
    for out_of_bounds in [json!([1, 2, 500.6]), json!([-0.6, 0, 0]), json!([1, 2, f64::MAX])] {
        assert!(campaign.report(&out_of_bounds, None, NOW).is_err(), "{out_of_bounds}");
    }
    // As many pointers as numbers, and only for a vector.
    campaign.question.answers.pop();
    assert!(campaign.check().is_err());
    let (mut histogram, _) = new_campaign(Aggregation::Histogram { bounds: vec![1.0] });
    histogram.question.rounded = true;
    assert!(histogram.check().is_err(), "a histogram counts its answer as it is");
}

/// Either aggregator's share of a report, alone, says nothing of the
/// answer: over 300 reports of each of two answers (the first bucket and
/// the last), the share each aggregator keeps of every count is odd as
/// often for one answer as for the other (within 0.15, more than four
/// standard deviations), while the same statistic over the two shares
/// added, the answer itself, tells the answers apart completely.
#[test]
fn either_aggregator_s_share_alone_is_indistinguishable_between_two_answers() {
    use prio::codec::Decode;
    use prio::field::Field128;
    let (campaign, keys) = new_campaign(Aggregation::Histogram { bounds: vec![10.0, 20.0, 30.0, 40.0] });
    let roles = roles(&campaign, &keys);
    let counts =
        |bytes: &[u8]| -> Vec<Field128> { bytes.chunks(16).map(|c| Field128::get_decoded(c).unwrap()).collect() };
    // For each answer: per aggregator (and for both added), the share of
    // the reports whose count of each bucket is odd.
    let odd_shares = |answer: f64| -> [Vec<f64>; 3] {
        const REPORTS: usize = 300;
        let mut odd = [vec![0.0; 5], vec![0.0; 5], vec![0.0; 5]];
        for _ in 0..REPORTS {
            let report = campaign.report(&json!(answer), None, NOW).unwrap();
            let started = [roles[0].start(&report).unwrap(), roles[1].start(&report).unwrap()];
            let message =
                roles[0].combine(&started[0].state, [&started[0].verifier_share, &started[1].verifier_share]).unwrap();
            let kept = [
                counts(&roles[0].finish(&started[0].state, &message).unwrap()),
                counts(&roles[1].finish(&started[1].state, &message).unwrap()),
            ];
            let both: Vec<Field128> = kept[0].iter().zip(&kept[1]).map(|(a, b)| *a + *b).collect();
            for (which, shares) in [&kept[0], &kept[1], &both].into_iter().enumerate() {
                for (bucket, share) in shares.iter().enumerate() {
                    if u128::from(*share) % 2 == 1 {
                        odd[which][bucket] += 1.0 / REPORTS as f64;
                    }
                }
            }
        }
        odd
    };
    let (low, high) = (odd_shares(5.0), odd_shares(45.0));
    for aggregator in 0..2 {
        for bucket in 0..5 {
            let (a, b) = (low[aggregator][bucket], high[aggregator][bucket]);
            assert!((a - b).abs() < 0.15, "aggregator {aggregator}, bucket {bucket}: {a} against {b}");
        }
    }
    // Added, the shares are the answer: bucket 0 counted 1 for 5 kWh, 0 for 45.
    let whole = |f: f64| (f * 1000.0).round() / 1000.0;
    assert_eq!([low[2][0], high[2][0], low[2][4], high[2][4]].map(whole), [1.0, 0.0, 0.0, 1.0]);
}
